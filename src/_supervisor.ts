// A supervisor's loop (gunicorn's arbiter): it starts one worker per slot, then takes one event
// at a time from its queue, in order: a worker ready; a worker ended (started again at once, in
// the same slot, on the same sockets, unless it keeps failing); a worker faulted (the app threw
// where nothing caught it: its replacement starts, and it is stopped once that one serves, so
// its socket never closes on connections nobody else would take); a signal or a stop (drain,
// then force at the deadline or at a second signal); until every worker has ended.

import type { Adapter } from "./_adapter.ts";
import type { EventQueue, Signal, WorkerMessage } from "./_events.ts";
import { startProcess, startThread, type WorkerHandle, type WorkerSpec } from "./_spawn.ts";
import type { Addr } from "./types.ts";
import type { PreparedPlan } from "./workers.ts";
import type { SupervisorEvent, SupervisorSummary } from "./supervise.ts";

/** A slot whose workers fail this many times within CRASH_WINDOW_MS before serving stops the server. */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 10_000;
/** How long after the grace time the supervisor waits before it ends its workers itself. */
const FORCE_AFTER_MS = 1_000;

/** What a supervisor is doing: starting (until every slot is ready), serving, stopping, killing. */
type State = "starting" | "serving" | "stopping" | "killing";

/** One slot: the id of its current worker, and the times its workers failed before they served. */
interface SlotState {
  readonly index: number;
  current: number;
  ready: boolean;
  deaths: number[];
  /** Whether a worker of this slot ever served (then `again` on the next ready). */
  servedOnce?: boolean;
  lastError?: string;
  served?: number;
  /** Where its worker said it listens. */
  addrs?: Addr[];
}

/** One started worker: its slot, and whether it is on its way out (replaced after a fault). */
interface Worker {
  readonly slot: SlotState;
  readonly handle: WorkerHandle;
  retiring: boolean;
  /** Kills a retiring worker that outlives its grace time. */
  deadline?: ReturnType<typeof setTimeout>;
}

/** The loop of one supervisor. */
export class Primary {
  #state: State = "starting";
  #nextId = 0;
  #code: 0 | 1 = 0;
  #reason: string | undefined;
  #respawns = 0;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #slots: SlotState[];
  readonly #workers = new Map<number, Worker>();
  readonly #ready: { resolve(): void; reject(err: Error): void; promise: Promise<void> };

  constructor(
    readonly a: Adapter,
    readonly events: EventQueue,
    readonly prepared: PreparedPlan[],
    readonly spec: Omit<WorkerSpec, "index">,
    readonly threads: boolean,
    readonly onEvent: (event: SupervisorEvent) => void,
  ) {
    let resolve!: () => void, reject!: (err: Error) => void;
    const promise = new Promise<void>((y, n) => ((resolve = y), (reject = n)));
    promise.catch(() => {});
    this.#ready = { resolve, reject, promise };
    this.#slots = Array.from(
      { length: spec.workers },
      (_, index) => ({ index, current: -1, ready: false, deaths: [] }),
    );
    for (const slot of this.#slots) this.#start(slot);
  }

  /** Resolves once every slot serves; rejects when the server stopped before (with why). */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Starts a worker in `slot`, lent the plans' shared sockets. */
  #start(slot: SlotState): void {
    const id = this.#nextId++;
    const spec: WorkerSpec = { ...this.spec, index: slot.index };
    const handle = this.threads ? startThread(spec, id, this.events) : startProcess(this.a, spec, id, this.events);
    for (const p of this.prepared) {
      if (p.plan.strategy === "shared" && slot.index < p.plan.workers && handle.process) p.shareWith(handle.process);
    }
    slot.current = id;
    slot.ready = false;
    this.#workers.set(id, { slot, handle, retiring: false });
  }

  /** Where the workers listen, as they said when ready, each address once, in slot order. */
  get addrs(): Addr[] {
    const seen = new Map<string, Addr>();
    for (const a of this.#slots.flatMap((s) => s.addrs ?? [])) seen.set(JSON.stringify(a), a);
    return [...seen.values()];
  }

  /** Takes events until every worker has ended; returns how it went. */
  async run(): Promise<SupervisorSummary> {
    while (this.#workers.size > 0) {
      const event = await this.events.next();
      if (event.kind === "signal") this.#onStop(false, event.signal);
      else if (event.kind === "stop") this.#onStop(event.force, undefined);
      else if (event.kind === "timer") this.#stop("killing");
      else if (event.kind === "exit") this.#onExit(event.id);
      else this.#onMessage(event.id, event.message);
    }
    clearTimeout(this.#graceTimer);
    if (this.#state === "starting") this.#fail(this.#reason ?? "The server stopped before it was ready");
    return {
      code: this.#code,
      ...(this.#reason ? { reason: this.#reason } : {}),
      served: this.#slots.map((s) => s.served),
      respawns: this.#respawns,
    };
  }

  #onMessage(id: number, message: WorkerMessage): void {
    const worker = this.#workers.get(id);
    if (!worker) return;
    const slot = worker.slot;
    if (message.polybind === "served") slot.served = (slot.served ?? 0) + message.requests;
    else if (message.polybind === "error") this.onEvent({ type: "error", index: slot.index, error: message.message });
    else if (message.polybind === "failed") {
      // The first word on a failure counts: the worker's own, then how its process ended.
      if (!worker.retiring) slot.lastError ??= message.message;
    } else if (message.polybind === "faulted") this.#onFault(id, worker, message.message);
    else if (id === slot.current) {
      slot.ready = true;
      slot.addrs = message.addrs;
      // Failures count towards giving up only until a worker of the slot serves.
      slot.deaths = [];
      this.onEvent({ type: "ready", index: slot.index, generation: this.spec.generation, again: !!slot.servedOnce });
      slot.servedOnce = true;
      // The replaced workers of this slot leave now that their replacement serves, within the grace time.
      for (const w of this.#workers.values()) if (w.slot === slot && w.retiring) this.#retire(w);
      if (this.#state === "starting" && this.#slots.every((s) => s.ready)) {
        this.#state = "serving";
        this.#ready.resolve();
      }
    }
  }

  /** Asks a replaced worker to drain, and ends it if it is still there after the grace time. */
  #retire(worker: Worker): void {
    worker.handle.stop();
    const kill = () => worker.handle.kill();
    worker.deadline = setTimeout(kill, this.spec.graceMs + FORCE_AFTER_MS);
  }

  /** The app threw where nothing caught it: a replacement starts; this worker serves until it is ready. */
  #onFault(id: number, worker: Worker, error: string): void {
    if (worker.retiring || id !== worker.slot.current || !this.#running()) return;
    worker.slot.lastError = error;
    // A worker alone on its address (single) keeps the port until it ends: its replacement
    // starts once it has drained and left (#onExit).
    const alone = this.prepared.some((p) => p.plan.strategy === "single" && worker.slot.index < p.plan.workers);
    if (alone) return this.#retire(worker);
    worker.retiring = true;
    this.#replace(worker.slot);
  }

  /** A worker ended: expected while stopping or once replaced; else it is started again. */
  #onExit(id: number): void {
    const worker = this.#workers.get(id);
    this.#workers.delete(id);
    clearTimeout(worker?.deadline);
    if (!worker || worker.retiring || id !== worker.slot.current || !this.#running()) return;
    this.#replace(worker.slot);
  }

  /** Starts `slot` again, unless it has failed CRASH_LIMIT times within the window: then the server stops. */
  #replace(slot: SlotState): void {
    const now = Date.now();
    slot.deaths = [...slot.deaths.filter((t) => now - t < CRASH_WINDOW_MS), now];
    const error = slot.lastError;
    slot.lastError = undefined;
    const giveUp = slot.deaths.length >= CRASH_LIMIT;
    this.onEvent({ type: "died", index: slot.index, generation: this.spec.generation, error, respawning: !giveUp });
    if (!giveUp) {
      this.#respawns++;
      this.#start(slot);
      return;
    }
    this.#code = 1;
    this.#reason = `Worker ${slot.index} failed ${slot.deaths.length} times in ${CRASH_WINDOW_MS / 1000} s` +
      (error ? `: ${error}` : "");
    this.#fail(this.#reason);
    this.#stop("stopping");
  }

  #running(): boolean {
    return this.#state === "starting" || this.#state === "serving";
  }

  #fail(reason: string): void {
    this.#ready.reject(new Error(reason));
  }

  /** A stop: graceful unless forced; a signal while stopping (or a forced stop) ends the workers at once. */
  #onStop(force: boolean, signal: Signal | undefined): void {
    if (this.#state === "killing") return;
    if (this.#state === "stopping") {
      if (signal === undefined && !force) return;
      this.onEvent({ type: "forcing", signal });
      this.#stop("killing");
      return;
    }
    this.onEvent({ type: "stopping", signal });
    this.#stop(force ? "killing" : "stopping");
  }

  #stop(next: "stopping" | "killing"): void {
    if (this.#state === "starting" && this.#code === 0) this.#fail("The server was stopped before it was ready");
    this.#state = next;
    // The primary's copies of the sockets go first, so that once the workers close theirs, a
    // new connection is refused rather than queued where nobody will accept it; not while a
    // worker still waits for its copy (it would wait in vain until it gave up).
    if (this.#slots.every((s) => s.ready)) { for (const p of this.prepared) void p.release(); }
    for (const w of this.#workers.values()) {
      clearTimeout(w.deadline);
      next === "stopping" ? w.handle.stop() : w.handle.kill();
    }
    clearTimeout(this.#graceTimer);
    if (next === "stopping") {
      const force = () => this.events.push({ kind: "timer", name: "grace" });
      this.#graceTimer = setTimeout(force, this.spec.graceMs + FORCE_AFTER_MS);
    }
  }
}
