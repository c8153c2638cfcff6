// The supervisor's one queue of events: signals, its workers' messages and ends, and requests
// from the code that started it (gunicorn's arbiter and its SIG_QUEUE).

import process from "node:process";
import type { ReloadResult, StopSignal } from "./supervise.ts";
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
  | { polybind: "faulted"; message: string }
  | { polybind: "error"; message: string };

/** The signals a supervisor handles: the stops, SIGHUP (a reload) and SIGUSR2 (a new primary). */
export type Signal = StopSignal | "SIGHUP" | "SIGUSR2";
const SIGNALS: readonly Signal[] = process.platform === "win32"
  ? ["SIGINT", "SIGTERM"]
  : ["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR2"];

/** What happens to a supervisor. `id` names one started worker (a respawned slot gets a new one). */
export type Event =
  | { kind: "signal"; signal: Signal }
  | { kind: "message"; id: number; message: WorkerMessage }
  | { kind: "exit"; id: number }
  | { kind: "stop"; force: boolean }
  | { kind: "reload"; done?: (result: ReloadResult) => void }
  | { kind: "timer"; name: "grace" }
  | { kind: "timer"; name: "reload"; generation: number };

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

/**
 * A worker process's messages share its stdout with the app's own output: each starts with an
 * ASCII record separator, which app text does not hold, and ends its line.
 */
const MARK = "\x1e";

/** A message as a worker process writes it on its stdout. */
export function formatMessage(message: WorkerMessage): string {
  return `${MARK}${JSON.stringify(message)}\n`;
}

/** One line of a worker's output: the app's own text before a message (if any), and the message. */
export function parseLine(line: string): { text?: string; message?: WorkerMessage } {
  const at = line.lastIndexOf(MARK);
  if (at < 0) return { text: line };
  const text = at > 0 ? line.slice(0, at) : undefined;
  try {
    const m = JSON.parse(line.slice(at + 1)) as WorkerMessage;
    const known = ["ready", "served", "failed", "faulted", "error"].includes(m?.polybind);
    return known ? { text, message: m } : { text: line };
  } catch {
    return { text: line }; // Not a message.
  }
}

/** An error as a worker tells it, on one line: its message (a runtime's colours taken out), its name if not plain Error. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((l) => !/^\s+at\s/.test(l)).join(" ").trim();
}
