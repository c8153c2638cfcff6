// The primary's one queue of events: signals and what its workers report (gunicorn's arbiter).

import process from "node:process";

/** What the worker processes report on their stdout, one JSON object a line. */
export type WorkerReport =
  | { polybind: "ready"; worker: number }
  | { polybind: "served"; worker: number; requests: number };

/** The signals the primary handles. SIGHUP stops like SIGTERM for now; it is to become a reload. */
export type Signal = "SIGINT" | "SIGTERM" | "SIGHUP";
const SIGNALS: readonly Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** What happens to the primary: a signal, a worker's report, a worker's end. */
export type Event =
  | { kind: "signal"; signal: Signal }
  | { kind: "report"; report: WorkerReport }
  | { kind: "exit"; worker: number };

/**
 * One queue of everything that happens to the primary (gunicorn's arbiter and its SIG_QUEUE):
 * signal handlers and workers only push, and one loop takes the events in order, so a second
 * signal during a stop is a change of that loop's state, never a race between handlers.
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
