// Hand-off of accepted connections to a server object that takes sockets through
// `emit("connection", socket)`: Node's http, https and http2 servers, also on Bun and Deno
// (whose node:http takes any node:stream Duplex), so that Express or Fastify can serve there.

import { Duplex } from "node:stream";
import { ipFamily } from "./_ip.ts";
import { releaseNative } from "./_conn.ts";
import { showProxyAddrs } from "./_proxy_conn.ts";
import type { Conn, Listener } from "./types.ts";

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
  /** Whether the server listens on its own (`http.Server` has it); see {@linkcode handOffConnections}. */
  readonly listening?: boolean;
}

/** A Conn as the `net.Socket` a Node http server expects, for runtimes whose sockets are not one. */
class ConnSocket extends Duplex {
  readonly #conn: Conn;
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #timeoutMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(conn: Conn) {
    super({ allowHalfOpen: true });
    this.#conn = conn;
  }

  override _read(): void {
    (this.#reader ??= this.#conn.readable.getReader()).read().then(({ done, value }) => {
      this.#touch();
      this.push(done ? null : value);
    }, (err) => this.destroy(err));
  }

  override _write(chunk: Uint8Array, _encoding: string, callback: (err?: Error | null) => void): void {
    this.#conn.write(chunk).then(() => {
      this.#touch();
      callback();
    }, callback);
  }

  override _writev(chunks: { chunk: Uint8Array }[], callback: (err?: Error | null) => void): void {
    // http writes the head and the body apart: one write of both.
    const all = new Uint8Array(chunks.reduce((n, { chunk }) => n + chunk.length, 0));
    let at = 0;
    for (const { chunk } of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    this._write(all, "", callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#conn.closeWrite().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.#timer);
    this.#conn.close();
    callback(err);
  }

  /** Ends writing, then closes, as `net.Socket.destroySoon` does (http calls it after a last response). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once("finish", () => this.destroy());
  }

  /** Emits "timeout" once the connection has been idle `ms` milliseconds (0 turns it off), like `net.Socket`. */
  setTimeout(ms: number, callback?: () => void): this {
    this.#timeoutMs = ms;
    if (callback) ms === 0 ? this.off("timeout", callback) : this.once("timeout", callback);
    this.#touch();
    return this;
  }

  #touch(): void {
    clearTimeout(this.#timer);
    this.#timer = this.#timeoutMs > 0 && !this.destroyed
      ? setTimeout(() => this.emit("timeout"), this.#timeoutMs)
      : undefined;
  }

  setNoDelay(on = true): this {
    this.#conn.setNoDelay(on);
    return this;
  }

  setKeepAlive(on = false): this {
    this.#conn.setKeepAlive(on);
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  get remoteAddress(): string | undefined {
    const a = this.#conn.remoteAddr;
    return a.transport === "tcp" ? a.hostname : undefined;
  }

  get remotePort(): number | undefined {
    const a = this.#conn.remoteAddr;
    return a.transport === "tcp" ? a.port : undefined;
  }

  get remoteFamily(): string | undefined {
    const address = this.remoteAddress;
    return address === undefined ? undefined : ipFamily(address);
  }

  get localAddress(): string | undefined {
    const a = this.#conn.localAddr;
    return a.transport === "tcp" ? a.hostname : undefined;
  }

  get localPort(): number | undefined {
    const a = this.#conn.localAddr;
    return a.transport === "tcp" ? a.port : undefined;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    const a = this.#conn.localAddr;
    return a.transport === "tcp" ? { address: a.hostname, family: ipFamily(a.hostname), port: a.port } : {};
  }
}

/** How many hand-offs feed each server that does not listen on its own. */
const feeding = new WeakMap<ConnectionSink, number>();

/**
 * Makes `server.listening` true while a hand-off feeds it, when the server does not listen on its
 * own: it is listening, through the listener. Deno's node:http closes each kept-alive connection
 * after a response while `listening` is false. Returns what puts the server's own back.
 */
function markListening(server: ConnectionSink): () => void {
  const count = feeding.get(server);
  if (count === undefined) {
    if (server.listening !== false) return () => {};
    Object.defineProperty(server, "listening", { configurable: true, get: () => true });
  }
  feeding.set(server, (count ?? 0) + 1);
  return () => {
    const left = feeding.get(server)! - 1;
    if (left > 0) return void feeding.set(server, left);
    feeding.delete(server);
    delete (server as { listening?: boolean }).listening;
  };
}

/**
 * Feeds every connection `listener` accepts to `server` (Node's `http.Server`, `https.Server`,
 * `http2` servers), until the listener closes. Works for TCP and Unix sockets, for every strategy
 * and on every runtime, where `server.listen(listener.native)` only takes over a TCP socket on
 * Node.js. A connection whose `native` is a `net.Socket` (Node.js, and inherited descriptors on
 * Bun and Deno) is handed over as it is; one of `Bun.listen` or `Deno.listen` as a `node:stream`
 * Duplex over the {@linkcode Conn} with the addresses, `setTimeout`, `setNoDelay` and
 * `setKeepAlive` of a `net.Socket`: what node:http servers there (and Express or Fastify on
 * them) need. (Bun's `https.Server` refuses such a Duplex.) While the hand-off runs, a server
 * that does not listen on its own reports `listening` as true, so that Deno's node:http keeps
 * kept-alive connections open. From a listener that reads the PROXY protocol, the server sees
 * the client of each header as `req.socket.remoteAddress` and `remotePort` (and the address it
 * connected to as `localAddress`, `localPort`), on every runtime: on Node.js the socket read
 * for the header is handed over with the bytes after the header put back and those addresses
 * set on it; elsewhere the Duplex takes them from the Conn.
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
  const unmark = markListening(server);
  try {
    for await (const conn of listener) {
      const native = conn.native;
      if (!(native instanceof Duplex)) server.emit("connection", new ConnSocket(conn));
      else {
        releaseNative(conn);
        if (conn.proxy !== undefined) showProxyAddrs(conn, native);
        server.emit("connection", native);
      }
    }
  } finally {
    unmark();
  }
}
