// The workers' HTTP servers, on each runtime's own server: Node's http.Server fed by polybind
// listeners, Deno.serve and Bun.serve on options derived from the plans.

import { createServer, type Server } from "node:http";
import {
  capabilities,
  handOffConnections,
  type Listener,
  type ListenerPlan,
  listenFromPlan,
  type ServeOptions,
  serveTargets,
} from "../mod.ts";

/** A running HTTP server of one worker. */
export interface WorkerServer {
  /** Requests answered so far. */
  readonly requests: number;
  stop(): Promise<void>;
}

const BODY = "Hello from polybind\n";

interface DenoServe {
  serve(options: Record<string, unknown>, handler: () => Response): { shutdown(): Promise<void> };
}
interface BunServe {
  serve(options: Record<string, unknown>): { stop(force?: boolean): Promise<void> | void };
}

function headers(index: number): Record<string, string> {
  return { "content-type": "text/plain", "x-polybind-worker": String(index) };
}

/** Node's http.Server fed by `listeners` (Node.js, and Bun for inherited sockets). */
function nodeHttp(listeners: Listener[], index: number, counter: { requests: number }): WorkerServer {
  const h = headers(index);
  const server: Server = createServer({ keepAlive: true }, (_req, res) => {
    counter.requests++;
    res.writeHead(200, h).end(BODY);
  });
  const serving = listeners.map((l) => handOffConnections(l, server));
  return {
    get requests() {
      return counter.requests;
    },
    stop: async () => {
      await Promise.all(listeners.map((l) => l.close()));
      await Promise.all(serving);
      server.closeAllConnections();
    },
  };
}

/** Starts the runtime's own server on `options`; returns how to stop it. */
function serveOne(runtime: string, options: ServeOptions, respond: () => Response): () => Promise<void> {
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    const server = deno.serve({ ...options, onListen() {} }, respond);
    return () => server.shutdown();
  }
  const bun = (globalThis as unknown as { Bun: BunServe }).Bun;
  const server = bun.serve({ ...options, fetch: respond });
  return async () => void await server.stop(true);
}

/** An HTTP server on listeners this process holds itself (inherited sockets). */
export function startLocalServer(listeners: Listener[], index: number): WorkerServer {
  return nodeHttp(listeners, index, { requests: 0 });
}

/**
 * Starts worker `index`'s HTTP server on every plan it has a part in; every response carries
 * `x-polybind-worker`.
 *
 * @returns The server, once it listens.
 */
export async function startWorkerServer(plans: ListenerPlan[], index: number): Promise<WorkerServer> {
  const counter = { requests: 0 };
  const mine = plans.filter((p) => index < p.workers);
  const runtime = capabilities().runtime;
  if (runtime === "node") {
    const listeners: Listener[] = [];
    for (const plan of mine) listeners.push(await listenFromPlan(plan, index));
    return nodeHttp(listeners, index, counter);
  }
  const h = headers(index);
  const respond = () => {
    counter.requests++;
    return new Response(BODY, { headers: h });
  };
  const stops: (() => Promise<void>)[] = [];
  try {
    for (const plan of mine) {
      // One server per address: a host name such as localhost has several.
      for (const target of await serveTargets(plan, index)) {
        let stop = () => Promise.resolve();
        stops.push(async () => {
          await stop();
          await target.close();
        });
        stop = serveOne(runtime, target.options, respond);
        await target.listening();
      }
    }
  } catch (err) {
    await Promise.allSettled(stops.map((s) => s()));
    throw err;
  }
  return {
    get requests() {
      return counter.requests;
    },
    stop: async () => void await Promise.all(stops.map((s) => s())),
  };
}
