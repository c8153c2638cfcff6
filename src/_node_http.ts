// node:http servers in a supervisor's worker: a fetch app through srvx's Node.js adapter (its
// NodeRequest and sendNodeResponse: a kept-up conversion, not ours, that takes node:http2's
// compatibility request and response too), HTTPS as node:http2's secure server (HTTP/2 and
// HTTP/1.1 by ALPN), and the graceful stop of any such server: stop accepting, `connection:
// close` (HTTP/1.1) or GOAWAY (HTTP/2) on what is answered meanwhile, idle connections closed,
// the rest closed at the deadline. srvx (and node:http) are loaded only when a fetch server is
// made: on import srvx makes the runtime's own Request, Response and Headers prototypes of its
// classes, which cost Bun.serve about 2 % a request in a worker that never uses node:http.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Http2SecureServer, Http2ServerRequest, Http2ServerResponse, Http2Session } from "node:http2";
import type { Socket } from "node:net";
import type * as Srvx from "srvx/node";
import type { FetchErrorHandler, FetchHandler } from "./_adapter.ts";
import type { TlsPem } from "./_tls.ts";
import type { FetchInfo } from "./worker.ts";

/** A server the fallback path feeds: node:http, or node:http2's secure server (HTTPS). */
export type NodeServer = Server | Http2SecureServer;
type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/** Whether a request came over HTTP/2 (no `connection` header there: a session ends with GOAWAY). */
function isHttp2(req: AnyRequest): req is Http2ServerRequest {
  return req.httpVersion === "2.0";
}

/** `response` without its `connection` header, which HTTP/2 forbids (Node drops it with a warning). */
function withoutConnection(response: Response): Response {
  if (!response.headers.has("connection")) return response;
  try {
    response.headers.delete("connection");
    return response;
  } catch {
    // Immutable headers (a fetched or redirect Response): a copy drops it.
    const copy = new Response(response.body, response);
    copy.headers.delete("connection");
    return copy;
  }
}

/**
 * A request's FetchInfo: the client's address is read from the socket only if the app asks for
 * it, by a getter of the class, not of each object.
 */
class NodeInfo implements FetchInfo {
  readonly #req: AnyRequest;
  constructor(req: AnyRequest) {
    this.#req = req;
  }
  get remoteAddr(): FetchInfo["remoteAddr"] {
    const socket = this.#req.socket;
    return socket.remoteAddress === undefined
      ? { transport: "unix", path: "" }
      : { transport: "tcp", hostname: socket.remoteAddress, port: socket.remotePort ?? 0 };
  }
}

/** What answers when sending fails: a 500 if nothing was sent yet, else the end of the connection. */
function failedSend(res: AnyResponse): void {
  if (!res.headersSent) {
    (res as ServerResponse).writeHead(500, { "content-type": "text/plain" }).end("Internal Server Error");
  } else res.destroy();
}

let srvx: Promise<typeof Srvx> | undefined;

/**
 * A node:http (or node:http2 compatibility) request handler that answers with `handler`, a
 * fetch handler, once srvx's adapter is loaded; what `handler` throws or rejects with, with
 * `onError` (a 500 without it).
 */
export async function nodeFetchHandler(
  handler: FetchHandler,
  onError?: FetchErrorHandler,
): Promise<(req: AnyRequest, res: AnyResponse) => void> {
  const { NodeRequest, sendNodeResponse } = await (srvx ??= import("srvx/node"));
  /** Sends `response` on `res` through srvx; HTTP/2 without a `connection` header. A failure ends `res`. */
  const send = (req: AnyRequest, res: AnyResponse, response: Response): void => {
    sendNodeResponse(res, isHttp2(req) ? withoutConnection(response) : response).catch(() => failedSend(res));
  };
  /** Answers the handler's error with onError's response, or a 500 where there is none or it fails too. */
  const failed = (req: AnyRequest, res: AnyResponse, error: unknown): void => {
    if (!onError) return failedSend(res);
    let response: Response;
    try {
      response = onError(error);
    } catch {
      return failedSend(res);
    }
    send(req, res, response);
  };
  return (req, res) => {
    const request = new NodeRequest({ req, res } as ConstructorParameters<typeof NodeRequest>[0]) as unknown as Request;
    let response: Response | Promise<Response>;
    try {
      response = handler(request, new NodeInfo(req));
    } catch (err) {
      return failed(req, res, err);
    }
    if (response instanceof Promise) response.then((r) => send(req, res, r), (err) => failed(req, res, err));
    else send(req, res, response);
  };
}

/**
 * The server for a fetch handler: node:http, or with `tls` node:http2's secure server, which
 * answers HTTP/2 and HTTP/1.1 (ALPN h2, http/1.1) through srvx's conversion alike.
 */
export async function createNodeFetchServer(
  handler: FetchHandler,
  onError?: FetchErrorHandler,
  tls?: TlsPem,
): Promise<NodeServer> {
  const listener = await nodeFetchHandler(handler, onError);
  if (!tls) return (await import("node:http")).createServer(listener);
  return (await import("node:http2")).createSecureServer({ allowHTTP1: true, cert: tls.cert, key: tls.key }, listener);
}

/** A server's requests in flight, counted, with what happens to each while it drains. */
export interface NodeDrain {
  /** Requests answered or in flight, since the start. */
  readonly requests: number;
  /** Requests in flight now. */
  readonly pending: number;
  /**
   * From now on, every response not yet begun says `connection: close` (those in flight too);
   * an HTTP/2 session is told GOAWAY once it sends a request (in flight: at once).
   */
  start(): void;
  /** Closes every connection left, at once. */
  closeAll(): void;
}

/**
 * Watches `server`'s requests (before its own handlers see them): counts them, adds `headers`
 * to every response, and, once draining, `connection: close` (HTTP/1.1) or GOAWAY (HTTP/2).
 */
export function watchNodeServer(server: NodeServer, headers: Record<string, string>): NodeDrain {
  let requests = 0;
  let draining = false;
  const inFlight = new Map<AnyResponse, AnyRequest>();
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  const http2 = !("closeAllConnections" in server);
  /** Ends the request's HTTP/1.1 connection after its response, or its HTTP/2 session after its streams. */
  const closeAfter = (req: AnyRequest, res: AnyResponse) => {
    if (isHttp2(req)) req.stream.session?.close();
    else if (!res.headersSent) res.setHeader("connection", "close");
  };
  const extraHeaders = Object.entries(headers);
  // One listener for every response (a response emits "close" once): no closure per request.
  function answered(this: AnyResponse): void {
    inFlight.delete(this);
  }
  server.prependListener("request", (req: AnyRequest, res: AnyResponse) => {
    requests++;
    inFlight.set(res, req);
    for (const [name, value] of extraHeaders) res.setHeader(name, value);
    if (draining) closeAfter(req, res);
    res.on("close", answered);
  });
  if (http2) {
    // node:http2's server has no closeAllConnections: what it accepted is counted here.
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    server.on("session", (session: Http2Session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
  }
  return {
    get requests() {
      return requests;
    },
    get pending() {
      return inFlight.size;
    },
    start() {
      draining = true;
      for (const [res, req] of inFlight) closeAfter(req, res);
    },
    closeAll() {
      if (!http2) return (server as Server).closeAllConnections();
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
