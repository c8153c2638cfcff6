// The workers' HTTP servers, on each runtime's own server: Node's http.Server fed by polybind
// listeners, Deno.serve and Bun.serve on options derived from the plans. A plan with
// `proxyProtocol` is served with node:http fed by its listener (which reads the header first) on
// every runtime: Deno.serve and Bun.serve read their sockets themselves, and would take it for HTTP.

import { createServer, type Server } from "node:http";
import {
  capabilities,
  formatAddress,
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

/** The client's address as the server saw it: `host:port`, IPv6 in brackets. */
function client(socket: { remoteAddress?: string; remotePort?: number }): string | undefined {
  const host = socket.remoteAddress;
  if (host === undefined) return undefined;
  return formatAddress({ host, port: socket.remotePort });
}

/**
 * Node's http.Server fed by `listeners` (Node.js, Bun for inherited sockets, and every runtime
 * with the PROXY protocol, where `showClient` makes each response say the client it saw, in
 * `x-polybind-client`).
 */
function nodeHttp(
  listeners: Listener[],
  index: number,
  counter: { requests: number },
  showClient: boolean,
): WorkerServer {
  const h = headers(index);
  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    counter.requests++;
    const from = showClient ? client(req.socket) : undefined;
    res.writeHead(200, from === undefined ? h : { ...h, "x-polybind-client": from }).end(BODY);
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

/**
 * An HTTP server on listeners this process holds itself (inherited sockets).
 *
 * @param showClient The listeners read the PROXY protocol: each response says the client.
 */
export function startLocalServer(listeners: Listener[], index: number, showClient = false): WorkerServer {
  return nodeHttp(listeners, index, { requests: 0 }, showClient);
}

/**
 * Starts worker `index`'s HTTP server on every plan it has a part in; every response carries
 * `x-polybind-worker`, and with the PROXY protocol `x-polybind-client`.
 *
 * @returns The server, once it listens.
 */
export async function startWorkerServer(plans: ListenerPlan[], index: number): Promise<WorkerServer> {
  const counter = { requests: 0 };
  const mine = plans.filter((p) => index < p.workers);
  const runtime = capabilities().runtime;
  const proxied = mine.some((p) => p.proxyProtocol !== undefined);
  if (runtime === "node" || proxied) {
    const listeners: Listener[] = [];
    try {
      for (const plan of mine) listeners.push(await listenFromPlan(plan, index));
    } catch (err) {
      await Promise.allSettled(listeners.map((l) => l.close()));
      throw err;
    }
    return nodeHttp(listeners, index, counter, proxied);
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
