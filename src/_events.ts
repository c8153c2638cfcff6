// The supervisor's one queue of events: signals, its workers' messages and ends, and requests
// from the code that started it (gunicorn's arbiter and its SIG_QUEUE).

import process from "node:process";
import type { Addr } from "./types.ts";

/**
 * What a worker tells its supervisor: it serves (on these addresses); it served this many requests (at its end); it
 * failed and ends (why); it faulted: the app threw where nothing caught it, and the worker goes
 * on serving until the supervisor has started its replacement and stops it.
 */
export type WorkerMessage =
  | { polybind: "ready"; addrs: Addr[] }
  | { polybind: "served"; requests: number }
  | { polybind: "failed"; message: string }
  | { polybind: "faulted"; message: string };

/** The signals a supervisor handles: SIGHUP stops like SIGTERM for now; it is to become a reload. */
export type Signal = "SIGINT" | "SIGTERM" | "SIGHUP";
const SIGNALS: readonly Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** What happens to a supervisor. `id` names one started worker (a respawned slot gets a new one). */
export type Event =
  | { kind: "signal"; signal: Signal }
  | { kind: "message"; id: number; message: WorkerMessage }
  | { kind: "exit"; id: number }
  | { kind: "stop"; force: boolean }
  | { kind: "timer"; name: "grace" | "respawn" };

/**
 * One queue of everything that happens to a supervisor: signal handlers, workers and callers
 * only push, and one loop takes the events in order, so a second signal during a stop is a
 * change of that loop's state, never a race between handlers.
 */
export class EventQueue {
  readonly #events: Event[] = [];
  #wake: (() => void) | undefined;
  readonly #handlers = SIGNALS.map((signal) => [signal, () => this.push({ kind: "signal", signal })] as const);

  /** Queues the signals from now on instead of their default action (which kills this process alone). */
  listen(): void {
    for (const [signal, handler] of this.#handlers) process.on(signal, handler);
  }

  /** Gives the signals their default action back. */
  close(): void {
    for (const [signal, handler] of this.#handlers) process.off(signal, handler);
  }

  push(event: Event): void {
    this.#events.push(event);
    this.#wake?.();
  }

  /** The oldest event, once there is one. */
  async next(): Promise<Event> {
    while (this.#events.length === 0) await new Promise<void>((resolve) => (this.#wake = resolve));
    this.#wake = undefined;
    return this.#events.shift()!;
  }
}

/** A worker's message, from one line of its output; undefined for any other line (the app's own). */
export function parseMessage(line: string): WorkerMessage | undefined {
  if (!line.startsWith('{"polybind":')) return undefined;
  try {
    const m = JSON.parse(line) as WorkerMessage;
    return ["ready", "served", "failed", "faulted"].includes(m.polybind) ? m : undefined;
  } catch {
    return undefined; // Not a message.
  }
}
