// `polybind serve`: an N-worker HTTP server. The primary plans and prepares the listeners of
// every address, starts one worker per part (a thread where each binds its own reuseport socket
// and the runtime has Web Workers, else a process), hands off or releases sockets, serves
// inherited sockets itself where the runtime cannot pass them on, and reports on shutdown.

import { availableParallelism } from "node:os";
import {
  type Addr,
  capabilities,
  cleanupUnixSocket,
  createListener,
  formatAddress,
  type Listener,
  type ListenerPlan,
  parseAddress,
  planListeners,
  type PreparedPlan,
  preparePlan,
  type ServerConfig,
} from "../mod.ts";
import { startLocalServer, type WorkerServer } from "./http.ts";
import type { ServeCommand } from "./args.ts";
import { EventQueue, type Signal } from "./events.ts";
import { startProcess, startThread, useThreads, type WorkerHandle } from "./workers.ts";

/** An address as the command prints it, written by formatAddress: a URL (`http://[::1]:8000`) or `unix:PATH`. */
function printable(a: Addr): string {
  if (a.transport === "unix") return `unix:${formatAddress({ uds: a.path }).replace(/^unix:/, "")}`;
  return `http://${formatAddress({ host: a.hostname, port: a.port }).replace(/^tcp:\/\//, "")}`;
}

/** Where a plan listens, as the command prints it. */
function describe(plan: ListenerPlan): string {
  const a = plan.address;
  if (a.transport !== "tcp") return a.transport === "unix" ? printable(a) : a.spec;
  return (plan.resolved ?? [a.hostname]).map((hostname) => printable({ ...a, hostname })).join(", ");
}

/** Binds what the primary holds: prepared plans for the workers, and inherited sockets it serves itself. */
async function prepareAll(configs: (ServerConfig | string)[], count: number, shared: boolean) {
  const prepared: PreparedPlan[] = [];
  const local: Listener[] = [];
  const plans = configs.map((c) => planListeners(c, count, { shared }));
  try {
    for (const [i, plan] of plans.entries()) {
      // An inherited socket this runtime cannot lend is served here, with its config (PROXY protocol too).
      if (plan.address.transport === "inherited" && plan.strategy === "single") {
        local.push(await createListener(configs[i]!));
      } else prepared.push(await preparePlan(plan));
    }
  } catch (err) {
    await Promise.all([...prepared.map((p) => p.close()), ...local.map((l) => l.close())]);
    throw err;
  }
  return { plans, prepared, local };
}

/** Runs `polybind serve`; resolves with the exit code once the server has shut down. */
export async function runServe(options: ServeCommand): Promise<number> {
  const count = options.workers ?? availableParallelism();
  const given: (ServerConfig | string)[] = options.listen.length > 0 ? options.listen : [
    options.uds !== undefined
      ? { uds: options.uds }
      : { host: options.host ?? "127.0.0.1", port: options.port ?? 8000 },
  ];
  const proxyProtocol = options.proxyProtocol;
  const configs = proxyProtocol === undefined
    ? given
    : given.map((c) => ({ ...(typeof c === "string" ? parseAddress(c) : c), proxyProtocol }));
  const events = new EventQueue();
  // Signals are queued from the start: one that comes while binding or starting stops what started.
  events.listen();
  try {
    const { plans, prepared, local } = await prepareAll(configs, count, options.shared);
    let outcome: Outcome;
    try {
      outcome = await new Primary(events, plans, prepared, local).run();
    } finally {
      await Promise.all(prepared.map((p) => p.close()));
      for (const c of configs) await cleanupUnixSocket(c);
    }
    report(outcome.served, outcome.workers);
    return outcome.code;
  } finally {
    events.close();
  }
}

/**
 * What the primary does with its time: `starting` its workers until each is ready, `serving`,
 * `stopping` them (asked to report and end), or `killing` them (a second SIGINT: at once).
 */
type State = "starting" | "serving" | "stopping" | "killing";

/** How a run ended: the exit code, and the requests each worker said it served. */
interface Outcome {
  code: number;
  workers: number;
  served: Map<number, number>;
}

/**
 * The primary's loop (gunicorn's arbiter): it starts the workers, then takes one event at a time
 * from the queue, in order, until every worker has ended.
 */
class Primary {
  #state: State = "starting";
  readonly #remote: ListenerPlan[];
  readonly #workers: number;
  readonly #threads: boolean;
  readonly #handles: WorkerHandle[];
  readonly #served = new Map<number, number>();
  #ready = 0;
  #running: number;
  #code = 0;
  #own: WorkerServer | undefined;

  constructor(
    readonly events: EventQueue,
    readonly plans: ListenerPlan[],
    readonly prepared: PreparedPlan[],
    readonly local: Listener[],
  ) {
    this.#remote = prepared.map((p) => p.plan);
    this.#workers = this.#running = Math.max(0, ...this.#remote.map((p) => p.workers));
    this.#threads = useThreads(this.#remote);
    this.#handles = Array.from({ length: this.#workers }, (_, i) => this.#start(i));
  }

  #start(i: number): WorkerHandle {
    const handle = this.#threads
      ? startThread(this.#remote, i, this.events)
      : startProcess(this.#remote, i, this.events);
    for (const p of this.prepared) {
      if (p.plan.strategy === "shared" && i < p.plan.workers && handle.process) p.shareWith(handle.process);
    }
    return handle;
  }

  async run(): Promise<Outcome> {
    if (this.#workers === 0) await this.#serve();
    while (this.#running > 0 || this.#state === "starting" || this.#state === "serving") {
      const event = await this.events.next();
      if (event.kind === "signal") this.#onSignal(event.signal);
      else if (event.kind === "exit") this.#onExit();
      else if (event.report.polybind === "served") this.#served.set(event.report.worker, event.report.requests);
      else if (++this.#ready === this.#workers && this.#state === "starting") await this.#serve();
    }
    if (this.#own) {
      await this.#own.stop();
      this.#served.set(this.#workers, this.#own.requests);
    } else await Promise.all(this.local.map((l) => l.close()));
    return { code: this.#code, workers: this.#workers + (this.#own ? 1 : 0), served: this.#served };
  }

  /** Every worker is ready: the primary lets go of its sockets, serves its own, says where. */
  async #serve(): Promise<void> {
    await Promise.all(this.prepared.map((p) => p.release()));
    if (this.local.length > 0) {
      this.#own = startLocalServer(this.local, this.#workers, this.plans.some((p) => p.proxyProtocol !== undefined));
    }
    const where = [...this.#remote.map(describe), ...this.local.flatMap((l) => l.addrs.map(printable))].join(", ");
    const kind = this.#workers > 0 ? (this.#threads ? " (threads)" : " (processes)") : "";
    const total = this.#workers + (this.#own ? 1 : 0);
    console.log(`polybind serve: listening on ${where} with ${total} worker(s)${kind} on ${capabilities().runtime}`);
    for (const plan of this.plans) console.log(`strategy: ${plan.strategy} (${plan.reason})`);
    this.#state = "serving";
  }

  /** SIGINT, SIGTERM and (for now) SIGHUP stop; a SIGINT while stopping ends the workers at once. */
  #onSignal(signal: Signal): void {
    if (this.#state === "starting" || this.#state === "serving") {
      console.log(`polybind serve: ${signal}: stopping`);
      this.#stop("stopping");
    } else if (this.#state === "stopping" && signal === "SIGINT") {
      console.log("polybind serve: SIGINT while stopping: ending the workers at once");
      this.#stop("killing");
    }
  }

  /** A worker ended: expected while stopping, else a failure that stops the others. */
  #onExit(): void {
    this.#running--;
    if (this.#state !== "starting" && this.#state !== "serving") return;
    console.error(
      this.#state === "starting"
        ? "polybind serve: a worker failed to start"
        : "polybind serve: a worker stopped unexpectedly; stopping the others",
    );
    this.#code = 1;
    this.#stop("stopping");
  }

  #stop(next: "stopping" | "killing"): void {
    this.#state = next;
    for (const h of this.#handles) next === "stopping" ? h.stop() : h.kill();
  }
}

/** Prints what each worker served; a worker ended at once, or that failed, did not say. */
function report(served: Map<number, number>, workers: number): void {
  let total = 0;
  for (let i = 0; i < workers; i++) {
    const n = served.get(i);
    total += n ?? 0;
    console.log(n === undefined ? `worker ${i} did not report` : `worker ${i} served ${n} requests`);
  }
  console.log(`total ${total} requests`);
}
