// A supervisor's loop (gunicorn's arbiter): it starts one worker per slot, then takes one event
// at a time from its queue, in order: a worker ready; a worker ended (started again at once, in
// the same slot, on the same sockets, unless it keeps failing); a worker faulted (the app threw
// where nothing caught it: its replacement starts, and it is stopped once that one serves, so
// its socket never closes on connections nobody else would take); a reload (a new generation
// starts beside the serving one, which drains only once all of the new one serves; a new
// generation that fails or is late is stopped instead); a signal or a stop (drain, then force
// at the deadline or at a second signal); until every worker has ended.

import type { Adapter } from "./_adapter.ts";
import type { EventQueue, Signal, WorkerMessage } from "./_events.ts";
import { startProcess, startThread, type WorkerHandle, type WorkerSpec } from "./_spawn.ts";
import { isLent } from "./_plan.ts";
import type { Addr } from "./types.ts";
import type { PreparedPlan } from "./workers.ts";
import type { ReloadResult, StopSignal, SupervisorEvent, SupervisorSummary } from "./supervise.ts";

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
  readonly generation: number;
  current: number;
  ready: boolean;
  deaths: number[];
  /** Whether a worker of this slot ever served (then `again` on the next ready). */
  servedOnce?: boolean;
  lastError?: string;
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

/** A reload under way: the new generation's slots, its deadline, who waits for the outcome. */
interface Reload {
  readonly slots: SlotState[];
  readonly started: number;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly waiting: ((result: ReloadResult) => void)[];
}

/** What a primary needs besides its queue and sockets. */
export interface PrimaryOptions {
  /** The generation of the first workers (after a predecessor's, for a new primary). */
  readonly generation: number;
  readonly threads: boolean;
  /** How long a new generation has to serve before a reload gives up on it. */
  readonly reloadTimeoutMs: number;
  /** Why a reload cannot be done at all (one socket only one worker can hold), if so. */
  readonly cannotReload?: string;
  readonly onEvent: (event: SupervisorEvent) => void;
  /** Told of SIGUSR2: hands the sockets to a new primary, which will stop this one once it serves. */
  readonly onSuccessor?: () => void;
}

/** The loop of one supervisor. */
export class Primary {
  #state: State = "starting";
  #nextId = 0;
  #code: 0 | 1 = 0;
  #reason: string | undefined;
  #respawns = 0;
  #generation = 1;
  /** The last generation started (served or not). */
  #started = 1;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #slots: SlotState[];
  #reload: Reload | undefined;
  /** Reloads asked for while one was under way: one more runs after it. */
  #queued: ((result: ReloadResult) => void)[] | undefined;
  readonly #served: (number | undefined)[];
  readonly #workers = new Map<number, Worker>();
  readonly #ready: { resolve(): void; reject(err: Error): void; promise: Promise<void> };
  readonly onEvent: (event: SupervisorEvent) => void;

  constructor(
    readonly a: Adapter,
    readonly events: EventQueue,
    readonly prepared: PreparedPlan[],
    readonly spec: Omit<WorkerSpec, "index" | "generation">,
    readonly options: PrimaryOptions,
  ) {
    let resolve!: () => void, reject!: (err: Error) => void;
    const promise = new Promise<void>((y, n) => ((resolve = y), (reject = n)));
    promise.catch(() => {});
    this.#ready = { resolve, reject, promise };
    this.onEvent = options.onEvent;
    this.#served = Array.from({ length: spec.workers }, () => undefined);
    this.#generation = options.generation;
    this.#started = options.generation;
    this.#slots = this.#generationOf(options.generation);
    for (const slot of this.#slots) this.#start(slot);
  }

  /** Resolves once every slot serves; rejects when the server stopped before (with why). */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** The last generation started (served, starting or failed). */
  get latest(): number {
    return this.#started;
  }

  /** The generation that serves (or is starting, before the first is ready). */
  get generation(): number {
    return this.#generation;
  }

  #generationOf(generation: number): SlotState[] {
    return Array.from(
      { length: this.spec.workers },
      (_, index) => ({ index, generation, current: -1, ready: false, deaths: [] }),
    );
  }

  /** Starts a worker in `slot`, lent its sockets of the plans that lend them. */
  #start(slot: SlotState): void {
    const id = this.#nextId++;
    const lent = this.prepared.filter((p) => isLent(p.plan) && slot.index < p.plan.workers);
    const threads = this.options.threads;
    // A thread serves copies of this process's descriptors; a process lent them by inheritance is
    // started with them. Asked only there: on Deno, asking makes a descriptor (for IPC).
    const held = threads || this.a.share?.via === "inherit" ? lent.flatMap((p) => p.descriptors(slot.index)) : [];
    const lentFds = threads && held.length > 0
      ? { lentFds: Object.fromEntries(held.map(({ key, fd }) => [key, fd])) }
      : {};
    const spec: WorkerSpec = { ...this.spec, index: slot.index, generation: slot.generation, ...lentFds };
    const inherit = threads ? [] : held;
    const handle = threads ? startThread(spec, id, this.events) : startProcess(this.a, spec, id, this.events, inherit);
    if (handle.process) { for (const p of lent) p.shareWith(handle.process, slot.index); }
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

  /** Whether run() has ended: nothing takes events any more. */
  ended = false;

  /** Takes events until every worker has ended; returns how it went. */
  async run(): Promise<SupervisorSummary> {
    while (this.#workers.size > 0) {
      const event = await this.events.next();
      if (event.kind === "signal") this.#onSignal(event.signal);
      else if (event.kind === "stop") this.#onStop(event.force, undefined);
      else if (event.kind === "reload") this.#onReload(event.done);
      else if (event.kind === "timer") {
        if (event.name === "grace") this.#stop("killing");
        else if (event.generation === this.#reload?.slots[0]?.generation) {
          // Only the reload it was set for: one that fired as that reload ended leaves the next alone.
          this.#abortReload(`the new generation did not serve within ${this.options.reloadTimeoutMs} ms`);
        }
      } else if (event.kind === "exit") this.#onExit(event.id);
      else this.#onMessage(event.id, event.message);
    }
    this.ended = true;
    clearTimeout(this.#graceTimer);
    if (this.#state === "starting") this.#fail(this.#reason ?? "The server stopped before it was ready");
    return {
      code: this.#code,
      ...(this.#reason ? { reason: this.#reason } : {}),
      served: [...this.#served],
      respawns: this.#respawns,
      generation: this.#generation,
    };
  }

  #onSignal(signal: Signal): void {
    if (signal === "SIGHUP") this.#onReload(undefined);
    else if (signal === "SIGUSR2") {
      if (this.#running() && this.options.onSuccessor) this.options.onSuccessor();
    } else this.#onStop(false, signal);
  }

  #onMessage(id: number, message: WorkerMessage): void {
    const worker = this.#workers.get(id);
    if (!worker) return;
    const slot = worker.slot;
    if (message.polybind === "served") {
      this.#served[slot.index] = (this.#served[slot.index] ?? 0) + message.requests;
    } else if (message.polybind === "error") {
      this.onEvent({ type: "error", index: slot.index, error: message.message });
    } else if (message.polybind === "failed") {
      // The first word on a failure counts: the worker's own, then how its process ended.
      if (!worker.retiring) slot.lastError ??= message.message;
    } else if (message.polybind === "faulted") this.#onFault(id, worker, message.message);
    else if (id === slot.current && !worker.retiring) this.#onReady(slot, message.addrs);
  }

  #onReady(slot: SlotState, addrs: Addr[]): void {
    slot.ready = true;
    slot.addrs = addrs;
    // Failures count towards giving up only until a worker of the slot serves.
    slot.deaths = [];
    this.onEvent({ type: "ready", index: slot.index, generation: slot.generation, again: !!slot.servedOnce });
    slot.servedOnce = true;
    // The replaced workers of this slot leave now that their replacement serves, within the grace time.
    for (const w of this.#workers.values()) if (w.slot === slot && w.retiring) this.#retire(w);
    if (this.#state === "starting" && this.#slots.every((s) => s.ready)) {
      this.#state = "serving";
      this.#ready.resolve();
      // A reload asked for while starting runs now.
      this.#runQueued();
    }
    const reload = this.#reload;
    if (reload && reload.slots.every((s) => s.ready)) this.#commitReload(reload);
  }

  /** A reload: a new generation starts beside this one (one reload at a time, one more queued). */
  #onReload(done: ((result: ReloadResult) => void) | undefined): void {
    const refuse = (reason: string) => done?.({ ok: false, generation: this.#generation, reason });
    if (!this.#running()) return refuse("the server is stopping");
    if (this.options.cannotReload !== undefined) {
      this.onEvent({ type: "reload-failed", generation: this.#started + 1, reason: this.options.cannotReload });
      return refuse(this.options.cannotReload);
    }
    if (this.#state === "starting" || this.#reload) {
      // One more reload after the one under way (or after the start) serves everyone who asked.
      (this.#queued ??= []).push(done ?? (() => {}));
      return;
    }
    // Numbers are never used twice: a generation that failed keeps its own while it drains.
    const generation = ++this.#started;
    const slots = this.#generationOf(generation);
    const timer = setTimeout(
      () => this.events.push({ kind: "timer", name: "reload", generation }),
      this.options.reloadTimeoutMs,
    );
    this.#reload = { slots, started: Date.now(), timer, waiting: done ? [done] : [] };
    this.onEvent({ type: "reloading", generation });
    for (const slot of slots) this.#start(slot);
  }

  /** Every worker of the new generation serves: the old one drains, and the new one is the server. */
  #commitReload(reload: Reload): void {
    clearTimeout(reload.timer);
    this.#reload = undefined;
    const old = this.#slots;
    this.#slots = reload.slots;
    this.#generation = reload.slots[0]!.generation;
    // Every worker of the old generation drains, a faulted one whose replacement is still starting too.
    for (const w of this.#workers.values()) {
      if (!old.includes(w.slot) || w.deadline !== undefined) continue;
      w.retiring = true;
      this.#retire(w);
    }
    const ms = Date.now() - reload.started;
    this.onEvent({ type: "reloaded", generation: this.#generation, ms });
    this.#endReload(reload, { ok: true, generation: this.#generation });
  }

  /** The new generation failed (or is late): it is stopped; the old one serves on. */
  #abortReload(reason: string): void {
    const reload = this.#reload;
    if (!reload) return;
    clearTimeout(reload.timer);
    this.#reload = undefined;
    // Its workers that serve already drain (a beside socket may have taken connections); the rest end.
    for (const w of this.#workers.values()) {
      if (!reload.slots.includes(w.slot)) continue;
      w.retiring = true;
      this.#retire(w);
    }
    this.onEvent({ type: "reload-failed", generation: reload.slots[0]!.generation, reason });
    this.#endReload(reload, { ok: false, generation: this.#generation, reason });
  }

  #endReload(reload: Reload, result: ReloadResult): void {
    for (const done of reload.waiting) done(result);
    this.#runQueued();
  }

  /** The reload asked for meanwhile, if any: one for everyone who asked (refused once stopping). */
  #runQueued(): void {
    const queued = this.#queued;
    this.#queued = undefined;
    if (queued) this.#onReload((r) => queued.forEach((done) => done(r)));
  }

  /** Asks a replaced worker to drain, and ends it if it is still there after the grace time. */
  #retire(worker: Worker): void {
    worker.handle.stop();
    const kill = () => worker.handle.kill();
    clearTimeout(worker.deadline);
    worker.deadline = setTimeout(kill, this.spec.graceMs + FORCE_AFTER_MS);
  }

  /** Whether `slot` belongs to a reload's new generation (which is never started again: the reload fails). */
  #isNew(slot: SlotState): boolean {
    return this.#reload?.slots.includes(slot) ?? false;
  }

  /** The app threw where nothing caught it: a replacement starts; this worker serves until it is ready. */
  #onFault(id: number, worker: Worker, error: string): void {
    if (worker.retiring || id !== worker.slot.current || !this.#running()) return;
    worker.slot.lastError = error;
    if (this.#isNew(worker.slot)) return this.#abortReload(`worker ${worker.slot.index} failed: ${error}`);
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
    if (!worker || id !== worker.slot.current || !this.#running()) return;
    const slot = worker.slot;
    if (this.#isNew(slot)) {
      return this.#abortReload(`worker ${slot.index} failed${slot.lastError ? `: ${slot.lastError}` : ""}`);
    }
    if (!worker.retiring) this.#replace(slot);
  }
  /** Starts `slot` again, unless it has failed CRASH_LIMIT times within the window: then the server stops. */
  #replace(slot: SlotState): void {
    const now = Date.now();
    slot.deaths = [...slot.deaths.filter((t) => now - t < CRASH_WINDOW_MS), now];
    const error = slot.lastError;
    slot.lastError = undefined;
    const giveUp = slot.deaths.length >= CRASH_LIMIT;
    this.onEvent({ type: "died", index: slot.index, generation: slot.generation, error, respawning: !giveUp });
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
  #onStop(force: boolean, signal: StopSignal | undefined): void {
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
    const reload = this.#reload;
    const waiting = this.#slots.some((s) => !s.ready) || reload?.slots.some((s) => !s.ready);
    if (reload) {
      clearTimeout(reload.timer);
      this.#reload = undefined;
      this.#endReload(reload, { ok: false, generation: this.#generation, reason: "the server is stopping" });
    }
    for (const done of this.#queued ?? []) {
      done({ ok: false, generation: this.#generation, reason: "the server is stopping" });
    }
    this.#queued = undefined;
    // The primary's copies of the sockets go first, so that once the workers close theirs, a
    // new connection is refused rather than queued where nobody will accept it; not while a
    // worker still waits for its copy (it would wait in vain until it gave up).
    if (!waiting) { for (const p of this.prepared) void p.release(); }
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
