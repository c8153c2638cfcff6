// A worker's slot, as its entry point runs it: the WorkerContext a worker module gets, the
// servers started on it, and its graceful stop (drain within the grace time, then close).

import { createServer, type Server } from "node:http";
import { adapter, type FetchHandler, type FetchServer } from "./_adapter.ts";
import { nodeFetchHandler, watchNodeServer } from "./_node_http.ts";
import type { WorkerSpec } from "./_spawn.ts";
import { handOffConnections } from "./handoff.ts";
import type { ListenerPlan } from "./plan.ts";
import { type ServeTarget, serveTargets } from "./serve.ts";
import type { Addr, Listener } from "./types.ts";
import { CONTEXT_KEY, type FetchApp, type WorkerContext } from "./worker.ts";
import { listenFromPlan } from "./workers.ts";

/**
 * How long a draining node:http server waits with nothing in flight before it closes the
 * connections left (see NodeDrain.quiet); Bun.serve's drain waits as long.
 */
const QUIET_MS = 250;

/** Something started on the slot: how it drains, and how it is closed when the grace time is up. */
interface Served {
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Whether the runtime's own fetch server can serve `plan`: options it can bind, and no PROXY header to read first. */
function native(plan: ListenerPlan): boolean {
  return plan.strategy !== "shared" && plan.address.transport !== "inherited" && plan.proxyProtocol === undefined;
}

/** Where the runtime's own server listens for a TCP or Unix plan (what serveTargets binds), as clients reach it. */
function addrsOf(plan: ListenerPlan): Addr[] {
  const a = plan.address;
  if (a.transport === "unix") return [{ transport: "unix", path: a.path }];
  if (a.transport !== "tcp") return [];
  return (plan.resolved ?? [a.hostname]).map((hostname) => ({ transport: "tcp", hostname, port: a.port }));
}

/** A worker's slot: the context of its module, and what it serves. */
export class Slot implements WorkerContext {
  readonly index: number;
  readonly generation: number;
  readonly workers: number;
  readonly plans: readonly ListenerPlan[];
  readonly #served: Served[] = [];
  readonly #stops: ((graceMs: number) => void | Promise<void>)[] = [];
  readonly #counts: (() => number)[] = [];
  readonly #headers: Record<string, string>;
  #draining = false;
  /** Where what was started on the slot listens, as clients reach it. */
  readonly addrs: Addr[] = [];

  constructor(readonly spec: WorkerSpec) {
    this.index = spec.index;
    this.generation = spec.generation;
    this.workers = spec.workers;
    this.plans = spec.plans.filter((p) => spec.index < p.workers);
    this.#headers = spec.workerHeader ? { "x-polybind-worker": `${spec.generation}.${spec.index}` } : {};
    (globalThis as { [CONTEXT_KEY]?: WorkerContext })[CONTEXT_KEY] = this;
  }

  /** Requests answered by what serve() and serveNode() started. */
  get requests(): number {
    return this.#counts.reduce((n, count) => n + count(), 0);
  }

  async listeners(): Promise<Listener[]> {
    const listeners: Listener[] = [];
    try {
      for (const plan of this.plans) listeners.push(await listenFromPlan(plan, this.index));
    } catch (err) {
      await Promise.allSettled(listeners.map((l) => l.close()));
      throw err;
    }
    const close = () => Promise.all(listeners.map((l) => l.close())).then(() => {});
    this.#served.push({ drain: close, close });
    this.addrs.push(...listeners.flatMap((l) => l.addrs));
    return listeners;
  }

  async serveTargets(): Promise<ServeTarget[]> {
    const targets: ServeTarget[] = [];
    for (const plan of this.plans) targets.push(...await serveTargets(plan, this.index));
    const close = () => Promise.all(targets.map((t) => t.close())).then(() => {});
    this.#served.push({ drain: close, close });
    for (const plan of this.plans) this.addrs.push(...addrsOf(plan));
    return targets;
  }

  async serve(app: FetchApp): Promise<void> {
    const handler = this.#handler(app);
    const start = adapter().fetchServer;
    const fallback = this.plans.filter((p) => !start || !native(p));
    if (fallback.length > 0) await this.#serveNodeOn(createServer(nodeFetchHandler(handler)), fallback, false);
    if (!start) return;
    for (const plan of this.plans.filter(native)) {
      for (const target of await serveTargets(plan, this.index)) {
        let server: FetchServer | undefined = undefined;
        this.#served.push({
          drain: async () => {
            await server?.drain();
            await target.close();
          },
          close: async () => {
            await server?.close();
            await target.close();
          },
        });
        server = await start(target.options, handler);
        await target.listening();
      }
      this.addrs.push(...addrsOf(plan));
    }
  }

  serveNode(server: Server): Promise<void> {
    return this.#serveNodeOn(server, this.plans, true);
  }

  onStop(fn: (graceMs: number) => void | Promise<void>): void {
    this.#stops.push(fn);
  }

  /** Stops everything started on the slot: drains within `graceMs`, then closes what is left. */
  async stop(graceMs: number): Promise<void> {
    this.#draining = true;
    const deadline = new Promise<"late">((resolve) => setTimeout(resolve, graceMs, "late"));
    const drained = Promise.all([
      ...this.#stops.map((fn) => Promise.resolve().then(() => fn(graceMs))),
      ...this.#served.map((s) => s.drain(graceMs)),
    ]);
    if ((await Promise.race([drained.then(() => "done" as const), deadline])) === "late") {
      await Promise.allSettled(this.#served.map((s) => s.close()));
    }
  }

  /**
   * The app's fetch, counted, with the worker header, and `connection: close` once draining. No
   * promise of its own: the app's response goes back as the app returned it (a Response or a
   * promise of one) unless a header is to be added.
   */
  #handler(app: FetchApp): FetchHandler {
    let requests = 0;
    this.#counts.push(() => requests);
    const headers = Object.entries(this.#headers);
    const decorate = (response: Response): Response => {
      const extra = this.#draining ? [...headers, ["connection", "close"]] : headers;
      try {
        for (const [name, value] of extra) response.headers.set(name!, value!);
        return response;
      } catch {
        // Immutable headers (a fetched or redirect Response): a copy takes them.
        const copy = new Response(response.body, response);
        for (const [name, value] of extra) copy.headers.set(name!, value!);
        return copy;
      }
    };
    return (request, info) => {
      requests++;
      const response = app.fetch(request, info);
      if (headers.length === 0 && !this.#draining) return response;
      return response instanceof Response ? decorate(response) : Promise.resolve(response).then(decorate);
    };
  }

  /** Feeds `server` the connections of `plans`' listeners; its stop drains it. */
  async #serveNodeOn(server: Server, plans: readonly ListenerPlan[], count: boolean): Promise<void> {
    const watch = watchNodeServer(server, count ? this.#headers : {});
    if (count) this.#counts.push(() => watch.requests);
    const listeners: Listener[] = [];
    try {
      for (const plan of plans) listeners.push(await listenFromPlan(plan, this.index));
    } catch (err) {
      await Promise.allSettled(listeners.map((l) => l.close()));
      throw err;
    }
    const serving = listeners.map((l) => handOffConnections(l, server));
    this.addrs.push(...listeners.flatMap((l) => l.addrs));
    this.#served.push({
      drain: async () => {
        await Promise.all(listeners.map((l) => l.close()));
        await Promise.all(serving);
        watch.start();
        await watch.quiet(QUIET_MS);
        server.closeAllConnections();
      },
      close: async () => {
        await Promise.all(listeners.map((l) => l.close()));
        server.closeAllConnections();
      },
    });
  }
}
