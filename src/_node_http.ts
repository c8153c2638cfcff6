// node:http servers in a supervisor's worker: a fetch app through srvx's Node.js adapter (its
// NodeRequest and sendNodeResponse: a kept-up conversion, not ours), and the graceful stop of
// any http.Server: stop accepting, `connection: close` on what is answered meanwhile, idle
// connections closed, the rest closed at the deadline.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { NodeRequest, sendNodeResponse } from "srvx/node";
import type { FetchHandler, FetchInfo } from "./_adapter.ts";

/** A node:http request handler that answers with `handler`, a fetch handler. */
export function nodeFetchHandler(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const socket = req.socket;
    const info: FetchInfo = {
      remoteAddr: { transport: "tcp", hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 },
    };
    const request = new NodeRequest({ req, res }) as unknown as Request;
    Promise.resolve()
      .then(() => handler(request, info))
      .then((response) => sendNodeResponse(res, response))
      .catch(() => {
        // What the app threw: a 500, as Deno.serve and Bun.serve answer.
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end("Internal Server Error");
        else res.destroy();
      });
  };
}

/** An http.Server's requests in flight, counted, with what happens to each while it drains. */
export interface NodeDrain {
  /** Requests answered or in flight, since the start. */
  readonly requests: number;
  /** From now on, every response says `connection: close`. */
  start(): void;
  /**
   * Resolves once nothing has been in flight for `quietMs`: by then a connection accepted just
   * before the listener closed has sent its request (and been answered), and what is left is
   * idle keep-alive connections, which may be closed. closeIdleConnections() at once would also
   * close a connection whose request is on its way: its client would see a reset.
   */
  quiet(quietMs: number): Promise<void>;
}

/**
 * Watches `server`'s requests (before its own handlers see them): counts them, adds `headers`
 * to every response, and, once draining, `connection: close`.
 */
export function watchNodeServer(server: Server, headers: Record<string, string>): NodeDrain {
  let requests = 0;
  let inFlight = 0;
  let draining = false;
  let lastEnd = 0;
  server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    requests++;
    inFlight++;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    if (draining) res.setHeader("connection", "close");
    res.once("close", () => {
      inFlight--;
      lastEnd = Date.now();
    });
  });
  return {
    get requests() {
      return requests;
    },
    start() {
      draining = true;
      lastEnd = Date.now();
    },
    async quiet(quietMs) {
      while (inFlight > 0 || Date.now() - lastEnd < quietMs) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(quietMs, 10))));
      }
    },
  };
}
