// The worker's side of a supervisor: what a worker module asks for its slot (its index and
// generation, its listeners or its server options) and how it serves on them.

import type { Server } from "node:http";
import type { ServeTarget } from "./serve.ts";
import type { ListenerPlan } from "./plan.ts";
import type { Listener } from "./types.ts";
import { CONTEXT_KEY } from "./_context.ts";

/** What a fetch app learns of its connection besides the request. */
export interface FetchInfo {
  /** The client: its IP address and port (a Unix socket's client has no name: `path` is ""). */
  readonly remoteAddr: { readonly transport: "tcp"; readonly hostname: string; readonly port: number } | {
    readonly transport: "unix";
    readonly path: string;
  };
}

/**
 * A fetch app: what `deno serve`, Bun and srvx serve, and what Hono, h3 and Elysia apps are. It
 * answers a web `Request` with a `Response`; `info.remoteAddr` is the client.
 */
export interface FetchApp {
  /**
   * Answers one request.
   *
   * @param request The request.
   * @param info The connection it came on: `remoteAddr` is the client.
   * @returns The response, or a promise of it.
   */
  fetch(request: Request, info: FetchInfo): Response | Promise<Response>;
}

/** A worker's slot in its supervisor, and the ways to serve on it. */
export interface WorkerContext {
  /** This worker's index, from 0 to `workers - 1`; a worker started again keeps it. */
  readonly index: number;
  /** The generation of workers this one belongs to, from 1. */
  readonly generation: number;
  /** How many workers the supervisor runs. */
  readonly workers: number;
  /** The plans this worker has a part in (those with `index < plan.workers`). */
  readonly plans: readonly ListenerPlan[];
  /**
   * Serves a fetch app on every address of the slot, with the runtime's own server (Deno.serve,
   * Bun.serve) where it can take the slot's sockets, else node:http through srvx's adapter.
   * The supervisor stops it gracefully. Resolves once it serves.
   */
  serve(app: FetchApp): Promise<void>;
  /**
   * Serves a node:http server (Express's `createServer(app)`, Fastify's `app.server`) on every
   * address of the slot, fed connections by polybind. The supervisor stops it gracefully.
   */
  serveNode(server: Server): Promise<void>;
  /** This slot's listeners, to serve by hand; they are closed when the worker stops. */
  listeners(): Promise<Listener[]>;
  /**
   * Options for `Deno.serve`, `Bun.serve` or `server.listen` on this slot (see serveTargets):
   * where each worker binds its own socket (Deno, Bun); a plan whose socket is lent (Node.js)
   * has none, use listeners() or serveNode() there.
   */
  serveTargets(): Promise<ServeTarget[]>;
  /** Runs `fn` when the worker is asked to stop, before it ends; it has `graceMs` to finish. */
  onStop(fn: (graceMs: number) => void | Promise<void>): void;
}

/**
 * The slot of the worker this code runs in, in a worker module started by
 * {@linkcode supervise}.
 *
 * @returns The worker's context.
 * @throws {TypeError} This code does not run in a worker of a supervisor.
 * @example
 * ```ts ignore
 * // worker.js, run by supervise({ worker: new URL("./worker.js", import.meta.url), ... })
 * import { createServer } from "node:http";
 * import { workerContext } from "polybind";
 * const worker = workerContext();
 * await worker.serveNode(createServer((req, res) => res.end(`worker ${worker.index}\n`)));
 * ```
 */
export function workerContext(): WorkerContext {
  const context = (globalThis as { [CONTEXT_KEY]?: WorkerContext })[CONTEXT_KEY];
  if (context === undefined) {
    throw new TypeError("Cannot get the worker context as this code does not run in a worker of supervise()");
  }
  return context;
}
