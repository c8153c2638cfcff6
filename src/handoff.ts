// Hand-off of accepted connections to a server object that takes sockets through
// `emit("connection", socket)`: Node's http, https and http2 servers.

import type { Listener } from "./types.ts";

/** A server that takes accepted sockets through a "connection" event, like Node's `http.Server`. */
export interface ConnectionSink {
  /**
   * Takes one accepted connection.
   *
   * @param event Always "connection".
   * @param socket The connection's native socket.
   * @returns Ignored.
   */
  emit(event: "connection", socket: unknown): unknown;
}

/**
 * Feeds every connection `listener` accepts to `server` (Node's `http.Server`, `https.Server`,
 * `http2` servers), until the listener closes. Works for TCP and Unix sockets and for every
 * strategy, where `server.listen(listener.native)` only takes over a TCP socket. The
 * connections' `native` must be what the server expects: `net.Socket`s, as on Node.js.
 *
 * @param listener Where connections come from.
 * @param server Where they go.
 * @returns Resolves when the listener is closed.
 * @example
 * ```ts ignore
 * import { createServer } from "node:http";
 * import { createListener, handOffConnections } from "polybind";
 * const listener = await createListener({ uds: "/run/app.sock" });
 * const server = createServer((_req, res) => res.end("ok"));
 * void handOffConnections(listener, server);
 * ```
 */
export async function handOffConnections(listener: Listener, server: ConnectionSink): Promise<void> {
  for await (const conn of listener) server.emit("connection", conn.native);
}
