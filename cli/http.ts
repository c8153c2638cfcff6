// The worker's HTTP server, on each runtime's own server: Node's http.Server on the polybind
// listener's native socket, Deno.serve and Bun.serve on options derived from the plan.

import { createServer } from "node:http";
import { capabilities, handOffConnections, type ListenerPlan, listenFromPlan, serveOptions } from "../mod.ts";

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

/**
 * Starts worker `index`'s HTTP server for `plan`: every response carries `x-polybind-worker`.
 *
 * @returns The server, once it listens.
 */
export async function startWorkerServer(plan: ListenerPlan, index: number): Promise<WorkerServer> {
  const counter = { requests: 0 };
  const headers = { "content-type": "text/plain", "x-polybind-worker": String(index) };
  const respond = () => {
    counter.requests++;
    return new Response(BODY, { headers });
  };
  const runtime = capabilities().runtime;
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    const server = deno.serve({ ...await serveOptions(plan, index), onListen() {} }, respond);
    return {
      get requests() {
        return counter.requests;
      },
      stop: () => server.shutdown(),
    };
  }
  if (runtime === "bun") {
    const bun = (globalThis as unknown as { Bun: BunServe }).Bun;
    const server = bun.serve({ ...await serveOptions(plan, index), fetch: respond });
    return {
      get requests() {
        return counter.requests;
      },
      stop: async () => void await server.stop(true),
    };
  }
  const listener = await listenFromPlan(plan, index);
  const server = createServer({ keepAlive: true }, (_req, res) => {
    counter.requests++;
    res.writeHead(200, headers).end(BODY);
  });
  const serving = handOffConnections(listener, server);
  return {
    get requests() {
      return counter.requests;
    },
    stop: async () => {
      await listener.close();
      await serving;
      server.closeAllConnections();
    },
  };
}
