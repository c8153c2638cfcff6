// supervise(): serve a fetch app (or run a worker module) on N workers, with the listening
// sockets planned and owned here, workers started again when they die, and a graceful stop.

import { availableParallelism } from "node:os";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { adapter } from "./_adapter.ts";
import { EventQueue } from "./_events.ts";
import { show } from "./_config.ts";
import { describePlan, isLent, runtimeServes } from "./_plan.ts";
import { webWorker } from "./_spawn.ts";
import { Primary } from "./_supervisor.ts";
import { firstGeneration, handOver, takeOver } from "./_handover.ts";
import { decideHandover } from "./_strategy.ts";
import { checkTls, type TlsFiles } from "./_tls.ts";
import { type Successor, successorReady } from "./successor.ts";
import { capabilities, probeCapabilities } from "./capabilities.ts";
import { cleanupUnixSocket } from "./listen.ts";
import { type ListenerPlan, planListeners } from "./plan.ts";
import type { Addr, ServerConfig } from "./types.ts";
import { type PreparedPlan, preparePlan } from "./workers.ts";

/**
 * How each new generation of workers (a reload, a worker started again) gets its sockets:
 * `lend`, the primary keeps each socket for the server's life and lends it to every
 * generation; `beside`, each generation binds its own SO_REUSEPORT sockets beside the old ones.
 */
export type Handover = "lend" | "beside";

/** A handover and the sentence that explains it. */
export interface HandoverChoice {
  /** How the generations get their sockets. */
  readonly handover: Handover;
  /** Why, in words a person reads in a log. */
  readonly reason: string;
}

/** The signals that stop a supervisor: gracefully, and at once when a second one comes. */
export type StopSignal = "SIGINT" | "SIGTERM";

/**
 * What a supervisor tells the code that started it (the command prints these): a worker serves
 * (`again` after it was started again); a worker ended or faulted (`error`: the app's error, if
 * it said one) and is started again unless it kept failing at start; a request the app failed
 * (`error`: it threw, and was answered 500); a reload began (a new `generation` starts), ended
 * (it serves, `ms` after the reload began, and the old one drains) or failed (`reason`: the old
 * generation serves on); a new primary was started (`pid`) or failed to start (`reason`);
 * a stop began (after `signal`, or `stop()`); a stop was forced (a second signal, or
 * `stop({ force: true })`).
 */
export type SupervisorEvent =
  | { type: "ready"; index: number; generation: number; again: boolean }
  | { type: "died"; index: number; generation: number; error?: string; respawning: boolean }
  | { type: "error"; index: number; error: string }
  | { type: "reloading"; generation: number }
  | { type: "reloaded"; generation: number; ms: number }
  | { type: "reload-failed"; generation: number; reason: string }
  | { type: "successor"; pid?: number; reason?: string }
  | { type: "stopping"; signal?: StopSignal }
  | { type: "forcing"; signal?: StopSignal };

/** How a reload ended: the new generation serves, or it was stopped and the old one serves on (why). */
export interface ReloadResult {
  /** Whether the new generation serves. */
  readonly ok: boolean;
  /** The generation that serves now. */
  readonly generation: number;
  /** Why the reload failed (or was refused). */
  readonly reason?: string;
}

/** How a supervisor's run ended. */
export interface SupervisorSummary {
  /** 0 after a stop, 1 when a worker kept failing (see `reason`). */
  readonly code: 0 | 1;
  /** Why the server stopped, when it was not asked to. */
  readonly reason?: string;
  /** Requests each slot answered (over all its workers), undefined where no worker said. */
  readonly served: readonly (number | undefined)[];
  /** How many times a worker was started again after it died or faulted. */
  readonly respawns: number;
  /** The generation that served last (1 plus the reloads that succeeded). */
  readonly generation: number;
}

/** What to serve, where, and on how many workers. */
export interface SuperviseOptions {
  /**
   * A module whose default export is a fetch app (`{ fetch(request, info) }`: a Hono or h3 app,
   * or what `deno serve` runs). Each worker imports it and serves it. Give `app` or `worker`.
   */
  app?: string | URL;
  /** A module that serves by itself through {@linkcode workerContext} (Express, Fastify...). */
  worker?: string | URL;
  /** Where to listen: one address or several, as createListener takes them. */
  listen: ServerConfig | string | (ServerConfig | string)[];
  /**
   * How many workers.
   * @default {availableParallelism()}
   */
  workers?: number;
  /**
   * One socket for all workers even where each could bind its own (see planListeners).
   * @default {false}
   */
  shared?: boolean;
  /**
   * How long a stop lets requests in flight finish before it closes what is left.
   * @default {10000}
   */
  graceMs?: number;
  /**
   * Every response says which worker answered: `x-polybind-worker: <generation>.<index>`.
   * @default {false}
   */
  workerHeader?: boolean;
  /**
   * How each new generation of workers (a reload, a worker started again) gets its sockets:
   * `"lend"`, this process keeps them and lends them to every generation (a SO_REUSEPORT socket
   * for each worker slot where it can; on Linux, Deno's and Bun's own servers serve them);
   * `"beside"`, each generation binds its own SO_REUSEPORT
   * sockets (the runtime's own server), which loses no connection only where
   * `tcp_migrate_req` is 1; `"auto"` picks as {@linkcode planHandover} says.
   * @default {"auto"}
   */
  handover?: Handover | "auto";
  /**
   * Serve HTTPS: the certificate chain and private key, PEM files that each worker reads as it
   * starts, so a reload (SIGHUP) picks up new ones: how certificates rotate with no downtime.
   */
  tls?: { cert: string; key: string };
  /**
   * How long a reload lets the new generation start before it gives up on it (and the old one
   * serves on).
   * @default {30000}
   */
  reloadTimeoutMs?: number;
  /**
   * The supervisor owns this process's signals: SIGINT and SIGTERM stop gracefully (at once on a
   * second one), SIGHUP reloads, SIGUSR2 starts a new primary that takes the sockets over; and
   * `process.exitCode` is set to the summary's code.
   * @default {true}
   */
  signals?: boolean;
  /** Told what happens (a worker ready, died, started again; a stop): the library prints nothing. */
  onEvent?: (event: SupervisorEvent) => void;
}

/** A running supervisor: its plans, its workers, and its stop. */
export interface Supervisor {
  /** The prepared plans, one per address: the port picked for port 0, the strategy and its reason. */
  readonly plans: readonly ListenerPlan[];
  /** Where the workers listen, as they said once ready (the resolved host, the port picked for port 0). */
  readonly addrs: readonly Addr[];
  /** How many workers run. */
  readonly workers: number;
  /** Whether the workers are threads of this process (Deno, Bun) or processes. */
  readonly mode: "threads" | "processes";
  /** How each generation of workers gets its sockets, and why (see {@linkcode planHandover}). */
  readonly handover: HandoverChoice;
  /** The generation of workers that serves: 1, then one more for each reload that succeeded. */
  readonly generation: number;
  /**
   * Starts a new generation of workers (which import the app again) beside the serving one, and
   * once all of it serves, lets the old one drain: SIGHUP does the same. A new generation that
   * fails or is not serving within `reloadTimeoutMs` is stopped, and the old one serves on. A
   * reload asked for during one runs once that one has ended.
   */
  reload(): Promise<ReloadResult>;
  /** Stops gracefully (at once with `force`); resolves once every worker has ended. */
  stop(options?: { force?: boolean }): Promise<SupervisorSummary>;
  /** Resolves once every worker has ended, after a stop or when a worker kept failing. */
  readonly done: Promise<SupervisorSummary>;
}

/** SIGUSR2: a new primary that takes the sockets over; this one stops once it serves. */
class SuccessorStart {
  #starting: Successor | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #cancelled = false;
  /** Whether a new primary took the sockets over. */
  handedOver = false;

  constructor(
    readonly prepared: readonly PreparedPlan[],
    readonly events: EventQueue,
    readonly onEvent: (event: SupervisorEvent) => void,
    readonly timeoutMs: number,
    readonly generation: () => number,
  ) {}

  start(): void {
    if (this.#starting !== undefined) {
      return this.onEvent({ type: "successor", reason: "a new primary is starting already" });
    }
    const next = handOver(this.prepared, this.generation());
    if (typeof next === "string") return this.onEvent({ type: "successor", reason: next });
    this.#starting = next;
    // One that is not serving in time is stopped: this primary serves on.
    this.#timer = setTimeout(() => next.kill(), this.timeoutMs);
    next.ready.then(() => {
      if (this.#cancelled) return;
      this.handedOver = true;
      this.onEvent({ type: "successor", pid: next.pid });
      this.events.push({ kind: "stop", force: false });
    }, (err: Error) => {
      this.#starting = undefined;
      if (!this.#cancelled) this.onEvent({ type: "successor", reason: err.message });
    }).finally(() => clearTimeout(this.#timer));
  }

  /** This server stops (not for the handover): a new primary still starting is stopped too. */
  cancel(): void {
    if (this.handedOver || this.#starting === undefined || this.#cancelled) return;
    this.#cancelled = true;
    clearTimeout(this.#timer);
    this.#starting.kill();
  }
}

/** Why a reload cannot start a new generation beside the serving one, if so: a socket only one worker can hold. */
function cannotReload(plans: ListenerPlan[]): string | undefined {
  const single = plans.find((p) => p.strategy === "single");
  if (single === undefined) return undefined;
  return `Cannot reload as ${
    describePlan(single.address)
  } has one socket that only one worker can hold (${single.reason}): restart the server instead`;
}

/**
 * A plan made ready for the workers. Inherited sockets this runtime cannot lend are adopted by
 * the one worker, a thread of this process, which has them.
 */
async function prepare(plan: ListenerPlan, threads: boolean): Promise<PreparedPlan> {
  if (plan.address.transport !== "inherited" || plan.strategy !== "single") return await preparePlan(plan);
  if (!threads) {
    throw new TypeError(
      `Cannot serve ${plan.address.spec} from a worker process as ${adapter().runtime} cannot lend it: serve it alone, or with a runtime that can`,
    );
  }
  const done = () => Promise.resolve();
  return { plan, shareWith() {}, descriptors: () => [], release: done, close: done };
}

/** A module URL as import() takes it everywhere (a path becomes a file URL). */
function moduleUrl(name: "app" | "worker", module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== "string" || module === "") {
    throw new TypeError(
      `Cannot start workers as '${name}' must be a module URL or path: current value is ${show(module)}`,
    );
  }
  return /^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module) ? module : pathToFileURL(module).href;
}

function checkHandover(value: unknown): Handover | "auto" {
  if (value === undefined) return "auto";
  if (value === "auto" || value === "lend" || value === "beside") return value;
  throw new RangeError(
    `Cannot start workers as 'handover' must be "auto", "lend" or "beside": current value is ${show(value)}`,
  );
}

/**
 * Says how each generation of a supervisor's workers would get its sockets here, and why:
 * beside the last (SO_REUSEPORT) where Linux moves a closing socket's queued connections to the
 * others (`tcp_migrate_req` is 1) and the workers' server stops without dropping what it
 * accepted (node:http as polybind drains it; not `Deno.serve` or `Bun.serve`); else lent by
 * the primary, which keeps each socket for the server's life, where the runtime can; else
 * beside, as nothing else is possible. `polybind probe` shows it.
 *
 * @param handover What would be asked for.
 * @returns The handover and its reason.
 * @throws {RangeError} `"lend"` or `"beside"` asked for where it cannot be had.
 * @example
 * ```ts
 * import { planHandover } from "../mod.ts";
 * const { handover, reason } = planHandover();
 * console.log(`${handover}: ${reason}`);
 * ```
 */
export function planHandover(handover: Handover | "auto" = "auto"): HandoverChoice {
  const a = adapter();
  const caps = capabilities();
  const reusePort = caps.reusePort.tcp || a.workerProcess.reusePort;
  return decideHandover(caps, reusePort, checkHandover(handover), !!a.fetchServer);
}

/** A duration option: a finite number from 0, or its default. */
function duration(name: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`Cannot start workers as '${name}' must be a number from 0: current value is ${show(ms)}`);
  }
  return ms;
}

function checkOptions(
  options: SuperviseOptions,
): {
  module: string;
  kind: "app" | "worker";
  workers: number;
  graceMs: number;
  reloadTimeoutMs: number;
  tls: TlsFiles | undefined;
} {
  if ((options.app === undefined) === (options.worker === undefined)) {
    throw new TypeError("Cannot start workers as exactly one of 'app' and 'worker' must be given");
  }
  const kind = options.app !== undefined ? "app" : "worker";
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) {
    throw new RangeError(
      `Cannot start workers as 'workers' must be an integer from 1: current value is ${show(workers)}`,
    );
  }
  return {
    module: moduleUrl(kind, (options.app ?? options.worker)!),
    kind,
    workers,
    graceMs: duration("graceMs", options.graceMs, 10_000),
    reloadTimeoutMs: duration("reloadTimeoutMs", options.reloadTimeoutMs, 30_000),
    // Checked here too: a bad file fails before any worker starts.
    tls: checkTls(options.tls),
  };
}

/**
 * Serves a fetch app, or runs a worker module, on `workers` workers, and keeps them serving.
 * The listening sockets are planned here (see {@linkcode planHandover}): lent, this process
 * binds them (without listening: it accepts nothing itself), one SO_REUSEPORT socket for each
 * worker slot where the runtime and the kernel can (else one for all), and lends them to every
 * generation of workers for the server's whole life (worker processes; on Bun, an app's own
 * SO_REUSEPORT sockets go to threads, each serving a copy); beside, each worker binds its own
 * SO_REUSEPORT socket (Deno.serve, Bun.serve: threads, or processes where only a new Deno
 * process can) after this process has checked that nobody holds the address. A worker that dies
 * is started again at once in its slot; one that dies 5 times in 10 s stops the server (code 1).
 * Resolves once every worker serves: a client is never accepted by a socket that then closes.
 *
 * @param options What to serve, where, how many workers, the grace time.
 * @returns The running supervisor.
 * @throws {TypeError} Neither or both of `app` and `worker`.
 * @throws {RangeError} A bad count, grace time or address.
 * @throws {ListenError} The OS refused an address (in use, say), before any worker started.
 * @throws {Error} The workers failed (the message says the last error) or were stopped (a signal)
 * before they all served; its `summary` says how it ended.
 * @example
 * ```ts
 * import { supervise } from "../mod.ts";
 * // Usually a file: supervise({ app: new URL("./app.ts", import.meta.url), ... })
 * const app = "data:text/javascript,export default { fetch: () => new Response('hello') }";
 * const server = await supervise({ app, listen: { host: "127.0.0.1", port: 0 }, workers: 2, signals: false });
 * const addr = server.addrs[0]!;
 * if (addr.transport !== "tcp") throw new Error("a TCP address was asked for");
 * console.assert(await (await fetch(`http://127.0.0.1:${addr.port}/`)).text() === "hello");
 * console.assert((await server.stop()).code === 0);
 * ```
 */
export async function supervise(options: SuperviseOptions): Promise<Supervisor> {
  const { module, kind, workers, graceMs, reloadTimeoutMs, tls } = checkOptions(options);
  const configs = Array.isArray(options.listen) ? options.listen : [options.listen];
  if (configs.length === 0) {
    throw new RangeError("Cannot start workers as 'listen' must give an address: current value is []");
  }
  const a = adapter();
  // A primary started by another on SIGUSR2 takes its sockets over.
  const taken = takeOver(configs, a.platform);
  const caps = await probeCapabilities();
  // Threads share this process's sockets and flags; a new process may have more (Deno's --unstable-net).
  const spawnReuse = !caps.reusePort.tcp && a.workerProcess.reusePort;
  const planFor = spawnReuse ? { ...caps, reusePort: { ...caps.reusePort, tcp: true } } : caps;
  const handover = decideHandover(caps, planFor.reusePort.tcp, checkHandover(options.handover), !!a.fetchServer);
  // Lent: the primary keeps the sockets for the server's life, and a worker replaced (or a
  // generation reloaded) never closes a socket the kernel routes connections to.
  // One SO_REUSEPORT socket for each worker where the runtime can lend those, else one they share.
  const lend = caps.processShare && (options.shared === true || handover.handover === "lend");
  const shared = options.shared === true;
  // A predecessor's lent reuseport sockets, one group for each of as many workers: each its own again.
  const plans = taken.map(({ config, join, groups }) =>
    planListeners(config, workers, { shared, lend, join, perWorker: groups === workers, capabilities: planFor })
  );
  // Threads where none needs what only a new process has, and no socket is lent, or every lent one
  // is a worker's own SO_REUSEPORT socket for the runtime's own server, and the runtime can copy
  // this process's descriptors into a thread (each worker serves a copy; these stay open for
  // every generation, as when lent to processes).
  const lendsToThreads = kind === "app" && a.share?.duplicate !== undefined && a.adoptFetchServer !== undefined;
  const threads = webWorker() !== undefined &&
    plans.every((p) =>
      (!isLent(p) || (lendsToThreads && p.strategy === "reuseport" && runtimeServes(p, tls !== undefined))) &&
      !(spawnReuse && p.strategy === "reuseport")
    );
  const events = new EventQueue();
  const told = options.onEvent ?? (() => {});
  // A stop that is not the handover's own stops a new primary that is still starting.
  const onEvent = (event: SupervisorEvent) => {
    if (event.type === "stopping" || event.type === "forcing") successor.cancel();
    told(event);
  };
  const signals = options.signals !== false;
  // Signals are queued from the start: one that comes while binding or starting stops what started.
  if (signals) events.listen();
  // As many workers as the plans can use: a plan with one accepting socket has one worker.
  const slots = Math.max(1, ...plans.map((p) => p.workers));
  const prepared: PreparedPlan[] = [];
  const successor = new SuccessorStart(prepared, events, told, reloadTimeoutMs, () => primary.latest);
  let primary: Primary;
  try {
    for (const plan of plans) prepared.push(await prepare(plan, threads));
    const spec = {
      module,
      kind,
      plans: prepared.map((p) => p.plan),
      workers: slots,
      graceMs,
      workerHeader: options.workerHeader === true,
      ...(tls ? { tls } : {}),
    };
    primary = new Primary(a, events, prepared, spec, {
      generation: firstGeneration(a.platform),
      threads,
      reloadTimeoutMs,
      cannotReload: cannotReload(prepared.map((p) => p.plan)),
      onEvent,
      onSuccessor: () => successor.start(),
    });
  } catch (err) {
    // An address refused, or a worker that could not even be started: nothing stays held.
    await Promise.allSettled(prepared.map((p) => p.close()));
    if (signals) events.close();
    throw err;
  }
  const done = primary.run().then(async (summary) => {
    // Handed over, the sockets and their files are the new primary's: this one only lets go.
    await Promise.all(prepared.map((p) => successor.handedOver ? p.release() : p.close()));
    // A worker ended at once leaves the Unix socket it bound: stale now, it goes (a live one stays).
    if (!successor.handedOver) { for (const c of configs) await cleanupUnixSocket(c).catch(() => {}); }
    if (signals) {
      events.close();
      if (summary.code !== 0) process.exitCode = summary.code;
    }
    return summary;
  });
  // A failure before every worker served: everything is closed before the error is thrown.
  await primary.ready.catch(async (err: Error) => {
    throw Object.assign(err, { summary: await done });
  });
  // A predecessor that started this primary stops now.
  successorReady();
  return {
    plans: prepared.map((p) => p.plan),
    addrs: primary.addrs,
    workers: slots,
    mode: threads ? "threads" : "processes",
    handover,
    get generation() {
      return primary.generation;
    },
    reload() {
      if (primary.ended) {
        return Promise.resolve({ ok: false, generation: primary.generation, reason: "the server has stopped" });
      }
      return new Promise((done) => events.push({ kind: "reload", done }));
    },
    stop(stopOptions) {
      events.push({ kind: "stop", force: stopOptions?.force === true });
      return done;
    },
    done,
  };
}
