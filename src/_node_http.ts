// node:http servers in a supervisor's worker: a fetch app through srvx's Node.js adapter (its
// NodeRequest and sendNodeResponse: a kept-up conversion, not ours), and the graceful stop of
// any http.Server: stop accepting, `connection: close` on what is answered meanwhile, idle
// connections closed, the rest closed at the deadline.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { NodeRequest, sendNodeResponse } from "srvx/node";
import type { FetchHandler } from "./_adapter.ts";
import type { FetchInfo } from "./worker.ts";

/** A node:http request handler that answers with `handler`, a fetch handler. */
export function nodeFetchHandler(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const socket = req.socket;
    const info: FetchInfo = {
      remoteAddr: socket.remoteAddress === undefined
        ? { transport: "unix", path: "" }
        : { transport: "tcp", hostname: socket.remoteAddress, port: socket.remotePort ?? 0 },
    };
    const request = new NodeRequest({ req, res }) as unknown as Request;
    // The handler (Slot's) answers the app's errors itself; what fails here is the sending.
    const failed = () => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end("Internal Server Error");
      else res.destroy();
    };
    const response = handler(request, info);
    if (response instanceof Promise) response.then((r) => sendNodeResponse(res, r)).catch(failed);
    else sendNodeResponse(res, response).catch(failed);
  };
}

/** An http.Server's requests in flight, counted, with what happens to each while it drains. */
export interface NodeDrain {
  /** Requests answered or in flight, since the start. */
  readonly requests: number;
  /** Requests in flight now. */
  readonly pending: number;
  /** From now on, every response not yet begun says `connection: close` (those in flight too). */
  start(): void;
}

/**
 * Watches `server`'s requests (before its own handlers see them): counts them, adds `headers`
 * to every response, and, once draining, `connection: close`.
 */
export function watchNodeServer(server: Server, headers: Record<string, string>): NodeDrain {
  let requests = 0;
  let draining = false;
  const inFlight = new Set<ServerResponse>();
  server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    requests++;
    inFlight.add(res);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    if (draining) res.setHeader("connection", "close");
    res.once("close", () => inFlight.delete(res));
  });
  return {
    get requests() {
      return requests;
    },
    get pending() {
      return inFlight.size;
    },
    start() {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader("connection", "close");
    },
  };
}
