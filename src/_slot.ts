// A worker's slot, as its entry point runs it: the WorkerContext a worker module gets, the
// servers started on it (HTTPS with the certificate files of the spec, read as it starts), and
// its graceful stop (stop accepting, answer what is in flight with `connection: close`, close
// what is left once nothing has been in flight for a moment or when the grace time is up).
// What only some workers use (node:http, lent sockets, HTTPS files, listeners) is loaded when
// first used: a worker serving with Deno.serve or Bun.serve carries none of it.

import type { Server } from "node:http";
import { adapter, type FetchErrorHandler, type FetchHandler, type FetchServer, type LentSocket } from "./_adapter.ts";
import { CONTEXT_KEY } from "./_context.ts";
import { describeError } from "./_events.ts";
import { isLent, runtimeServes } from "./_plan.ts";
import type { NodeServer } from "./_node_http.ts";
import type { WorkerSpec } from "./_spawn.ts";
import type { TlsPem } from "./_tls.ts";
import type { ListenerPlan } from "./plan.ts";
import { type ServeTarget, serveTargets } from "./serve.ts";
import type { Addr, Listener } from "./types.ts";
import type { FetchApp, WorkerContext } from "./worker.ts";

/**
 * How long a draining server waits with nothing in flight before it closes the connections
 * left: a connection accepted just before the listener closed has sent its request by then (and
 * is answered), so what is left is idle. Closing at once would reset a request on its way.
 */
const QUIET_MS = 250;
const POLL_MS = 10;

/** Resolves once `pending()` has been 0 for QUIET_MS. */
async function quiet(pending: () => number): Promise<void> {
  for (let still = 0; still < QUIET_MS; still += POLL_MS) {
    if (pending() > 0) still = 0;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Something started on the slot: how it drains, and how it is closed when the grace time is up. */
interface Served {
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Where the runtime's own server listens for a TCP or Unix plan (what serveTargets binds), as clients reach it. */
function addrsOf(plan: ListenerPlan): Addr[] {
  const a = plan.address;
  if (a.transport === "unix") return [{ transport: "unix", path: a.path }];
  if (a.transport !== "tcp") return [];
  return (plan.resolved ?? [a.hostname]).map((hostname) => ({ transport: "tcp", hostname, port: a.port }));
}

/**
 * The runtime's own server's options with HTTPS: `tls: { cert, key }` (PEM text), as Bun.serve
 * takes it; the Deno adapter hands Deno.serve `cert` and `key`.
 */
function withTls(options: Record<string, unknown>, tls: TlsPem | undefined): Record<string, unknown> {
  return tls ? { ...options, tls: { cert: tls.cert, key: tls.key } } : options;
}

/** An app as a fetch server runs it: its handler, and the answer to what that throws or rejects with. */
interface Answering {
  readonly fetch: FetchHandler;
  readonly onError: FetchErrorHandler;
}

/** node:http serving `app` (HTTPS with `tls`), its module loaded now. */
async function nodeFetchServer(app: Answering, tls: TlsPem | undefined): Promise<NodeServer> {
  return await (await import("./_node_http.ts")).createNodeFetchServer(app.fetch, app.onError, tls);
}

/** A worker's slot: the context of its module, and what it serves. */
export class Slot implements WorkerContext {
  readonly index: number;
  readonly generation: number;
  readonly workers: number;
  readonly plans: readonly ListenerPlan[];
  /** Where what was started on the slot listens, as clients reach it. */
  readonly addrs: Addr[] = [];
  readonly #served: Served[] = [];
  readonly #stops: ((graceMs: number) => void | Promise<void>)[] = [];
  readonly #counts: (() => number)[] = [];
  readonly #headers: Record<string, string>;
  #draining = false;

  /**
   * @param spec The worker's spec.
   * @param onAppError Told of a request the app failed (it threw or rejected): answered 500 by the server.
   */
  constructor(readonly spec: WorkerSpec, readonly onAppError: (message: string) => void) {
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
    const listeners = await this.#listen(this.plans);
    const close = () => Promise.all(listeners.map((l) => l.close())).then(() => {});
    this.#served.push({ drain: close, close });
    return listeners;
  }

  async serveTargets(): Promise<ServeTarget[]> {
    const targets: ServeTarget[] = [];
    const close = () => Promise.all(targets.map((t) => t.close())).then(() => {});
    this.#served.push({ drain: close, close });
    for (const plan of this.plans) targets.push(...await serveTargets(plan, this.index));
    for (const plan of this.plans) this.addrs.push(...addrsOf(plan));
    return targets;
  }

  async serve(app: FetchApp): Promise<void> {
    // The files as they are now: a reload's new workers read them again.
    const tls = this.spec.tls ? (await import("./_tls.ts")).readTls(this.spec.tls) : undefined;
    const handler = this.#handler(app);
    const start = adapter().fetchServer;
    const native = (p: ListenerPlan) =>
      start !== undefined && !isLent(p) && p.address.transport !== "inherited" && runtimeServes(p, !!tls);
    const adopted: ListenerPlan[] = [];
    for (const plan of this.plans.filter((p) => isLent(p) && runtimeServes(p, !!tls))) {
      if (await this.#adopt(plan, tls, handler)) adopted.push(plan);
    }
    const fallback = this.plans.filter((p) => !native(p) && !adopted.includes(p));
    if (fallback.length > 0) {
      await this.#serveNodeOn(await nodeFetchServer(handler, tls), () => this.#listen(fallback), false);
    }
    if (!start) return;
    for (const plan of this.plans.filter(native)) {
      for (const target of await serveTargets(plan, this.index)) {
        let server: FetchServer | undefined = undefined;
        this.#track(() => server, () => target.close());
        server = await start(withTls(target.options, tls), handler.fetch, handler.onError);
        await target.listening();
      }
      this.addrs.push(...addrsOf(plan));
    }
  }

  /**
   * Serves the sockets lent for `plan` with the runtime's own server where the adapter can make
   * it take them (adapters/_adopt.ts); those it cannot, with node:http. False where this
   * process has no descriptor of them (listenFromPlan's listener is the way then).
   */
  async #adopt(plan: ListenerPlan, tls: TlsPem | undefined, handler: Answering): Promise<boolean> {
    const adopt = adapter().adoptFetchServer;
    if (!adopt) return false;
    const lent = await import("./_lent.ts");
    const sockets = await lent.lentDescriptors(plan, this.index, this.spec.lentFds);
    if (!sockets) return false;
    const rest: LentSocket[] = [];
    const addrs: Addr[] = [];
    for (const socket of sockets) {
      // A check that failed leaves the socket as it was: node:http serves it, as it would have.
      const server = await adopt(socket, withTls({}, tls), handler.fetch, handler.onError);
      if (typeof server === "string") rest.push(socket);
      else {
        this.#track(() => server, () => Promise.resolve());
        addrs.push(server.addr);
      }
    }
    if (rest.length > 0) {
      await this.#serveNodeOn(await nodeFetchServer(handler, tls), async () => {
        const listener = await lent.listenLent(plan, rest);
        addrs.push(...listener.addrs);
        return [listener];
      }, false);
    }
    // Inherited sockets are where they are bound; a TCP or Unix plan's, where the plan says.
    this.addrs.push(...(plan.address.transport === "inherited" ? addrs : addrsOf(plan)));
    return true;
  }

  /** The drain and close of a fetch server (there once started) and what it listens on. */
  #track(server: () => FetchServer | undefined, release: () => Promise<void>): void {
    this.#served.push({
      drain: async () => {
        const s = server();
        if (s) {
          await s.stopAccepting();
          await quiet(() => s.pending);
          await (s.finish ? s.finish() : s.close());
        }
        await release();
      },
      close: async () => {
        await server()?.close();
        await release();
      },
    });
  }

  serveNode(server: Server): Promise<void> {
    return this.#serveNodeOn(server, () => this.#listen(this.plans), true);
  }

  onStop(fn: (graceMs: number) => void | Promise<void>): void {
    this.#stops.push(fn);
  }

  /** Stops everything started on the slot: drains within `graceMs`, then closes what is left. */
  async stop(graceMs: number): Promise<void> {
    this.#draining = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"late">((resolve) => (timer = setTimeout(resolve, graceMs, "late")));
    // A hook or a drain that fails ends its own part, not the stop.
    const drained = Promise.allSettled([
      ...this.#stops.map((fn) => Promise.resolve().then(() => fn(graceMs))),
      ...this.#served.map((s) => s.drain()),
    ]);
    const outcome = await Promise.race([drained.then(() => "done" as const), deadline]);
    clearTimeout(timer);
    if (outcome === "late") await Promise.allSettled(this.#served.map((s) => s.close()));
  }

  /**
   * The app's fetch: counted; a throw or a rejection answered 500 by the server (told to
   * onAppError); with the worker header, and `connection: close` on what is answered once
   * draining (requests in flight included). A response the app gave synchronously costs no
   * promise, and without the header nothing but a check until the slot drains: on Bun.serve a
   * `try` and a header check of each response cost 1–2 % of a small request (A/Bs of 10 starts).
   */
  #handler(app: FetchApp): Answering {
    let requests = 0;
    this.#counts.push(() => requests);
    const headers = Object.entries(this.#headers);
    const decorate = (response: Response): Response => {
      if (headers.length === 0 && !this.#draining) return response;
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
    const onError = (err: unknown): Response => {
      this.onAppError(describeError(err));
      return decorate(
        new Response("Internal Server Error\n", { status: 500, headers: { "content-type": "text/plain" } }),
      );
    };
    const plain = headers.length === 0;
    const decorated: FetchHandler = (request, info) => {
      const response = app.fetch(request, info);
      return response instanceof Response ? decorate(response) : Promise.resolve(response).then(decorate);
    };
    const fetch: FetchHandler = (request, info) => {
      requests++;
      if (!plain || this.#draining) return decorated(request, info);
      const response = app.fetch(request, info);
      // Decorated once it is answered: the slot may be draining by then.
      return response instanceof Response ? response : Promise.resolve(response).then(decorate);
    };
    return { fetch, onError };
  }

  /** Listens on `plans` (all of them, or none). */
  async #listen(plans: readonly ListenerPlan[]): Promise<Listener[]> {
    const listeners: Listener[] = [];
    const { listenFromPlan } = await import("./workers.ts");
    try {
      for (const plan of plans) listeners.push(await listenFromPlan(plan, this.index));
    } catch (err) {
      await Promise.allSettled(listeners.map((l) => l.close()));
      throw err;
    }
    this.addrs.push(...listeners.flatMap((l) => l.addrs));
    return listeners;
  }

  /** Feeds `server` the connections of the listeners `listen` gives; its stop drains it. */
  async #serveNodeOn(server: NodeServer, listen: () => Promise<Listener[]>, count: boolean): Promise<void> {
    const [{ watchNodeServer }, { handOffConnections }] = await Promise.all([
      import("./_node_http.ts"),
      import("./handoff.ts"),
    ]);
    const watch = watchNodeServer(server, count ? this.#headers : {});
    if (count) this.#counts.push(() => watch.requests);
    const listeners = await listen();
    const serving = listeners.map((l) => handOffConnections(l, server));
    this.#served.push({
      drain: async () => {
        await Promise.all(listeners.map((l) => l.close()));
        await Promise.all(serving);
        watch.start();
        await quiet(() => watch.pending);
        watch.closeAll();
      },
      close: async () => {
        await Promise.all(listeners.map((l) => l.close()));
        watch.closeAll();
      },
    });
  }
}
