// The Conn every runtime gives out, written once over the runtime's raw connection: addresses
// (a Unix connection named by its listener's public path), read() or `readable` but not both,
// streams whose end leaves the other direction open, an idempotent close.

import type { RawConn } from "./_adapter.ts";
import type { Addr, Conn } from "./types.ts";
import { connReadable, connWritable } from "./_conn_streams.ts";

/** What read() does once `readable` has been taken: the stream owns the bytes from then on. */
export function readableTaken(): Promise<never> {
  return Promise.reject(new TypeError("Conn.read() cannot be used once Conn.readable has been taken"));
}

/** The key of a Conn's method that gives its native socket back, with `first` as its first bytes. */
export const RELEASE: unique symbol = Symbol("polybind.release");

/** A Conn that can give its native socket back to a reader of its own. */
export interface Releasing {
  [RELEASE]?(first?: Uint8Array): void;
}

/**
 * A Conn's native socket, handed to a reader of its own (an http.Server): the bytes the Conn
 * read and has not given out (the rest of a PROXY header's packet) are put back first, and its
 * reads reach the socket's stream again. The Conn reads nothing after.
 *
 * @param conn A Conn from polybind, not read by its user.
 * @returns `conn.native`.
 * @example
 * ```ts ignore
 * const socket = releaseNative(conn);
 * if (socket instanceof Duplex) server.emit("connection", socket);
 * ```
 */
export function releaseNative(conn: Conn): unknown {
  (conn as Releasing)[RELEASE]?.();
  return conn.native;
}

/** The key of a Conn's read() with a callback (see {@linkcode readWith}). */
const READ_WITH: unique symbol = Symbol("polybind.readWith");

/** What `done` of {@linkcode readWith} gets: bytes read, `null` at end of stream, or the error. */
type ReadDone = (result: unknown) => void;

interface ReadingWith {
  [READ_WITH]?(p: Uint8Array, done: ReadDone): void;
}

/** A raw connection that can read with a callback (node:net's and Bun's pushed connections). */
interface RawReadingWith {
  readWith?(p: Uint8Array, done: ReadDone): void;
}

/**
 * `conn.read(p)` with a callback instead of a promise, where the Conn can (no promise and no
 * microtask on Node.js and Bun; elsewhere read()'s own promise): `done` gets the number of bytes,
 * `null` at end of stream, or the error (any other value), once.
 *
 * @param conn A Conn from polybind (any other Conn is read with read()).
 * @param p Where the bytes go.
 * @param done Called once with what read() would have settled with.
 * @example
 * ```ts ignore
 * readWith(conn, buf, (n) => typeof n === "number" ? parse(buf, n) : conn.close());
 * ```
 */
export function readWith(conn: Conn, p: Uint8Array, done: ReadDone): void {
  const own = (conn as ReadingWith)[READ_WITH];
  if (own !== undefined) own.call(conn, p, done);
  else conn.read(p).then(done, done);
}

/** The key of a Conn's getter of its peer's IP address alone (see {@linkcode peerHost}). */
const PEER_HOST: unique symbol = Symbol("polybind.peerHost");

interface HavingPeerHost {
  readonly [PEER_HOST]?: string | undefined;
}

/**
 * The IP address of `conn`'s peer without its port, for a check that needs no more (the PROXY
 * protocol's trusted sources): on Bun a `remotePort` is a `getpeername()` each time, the address
 * is not. `undefined` for a Unix socket's peer.
 *
 * @param conn A Conn (one not from polybind is asked for its `remoteAddr`).
 * @returns The address, as `remoteAddr.hostname` gives it.
 * @example
 * ```ts ignore
 * const host = peerHost(conn);
 * if (host !== undefined && !inBlocks(host, trusted)) conn.close();
 * ```
 */
export function peerHost(conn: Conn): string | undefined {
  if (PEER_HOST in conn) return (conn as HavingPeerHost)[PEER_HOST];
  const peer = conn.remoteAddr;
  return peer.transport === "tcp" ? peer.hostname : undefined;
}

/** A raw connection as the public Conn. */
class CoreConn implements Conn {
  readonly #raw: RawConn;
  readonly #unixPath: string | undefined;
  #localAddr?: Addr;
  #remoteAddr?: Addr;
  #readable?: ReadableStream<Uint8Array>;
  #writable?: WritableStream<Uint8Array>;
  #closed = false;

  constructor(raw: RawConn, unixPath: string | undefined) {
    this.#raw = raw;
    this.#unixPath = unixPath;
  }

  get native(): unknown {
    return this.#raw.native;
  }

  /** Asked of the socket on first use, not at accept: on node:net each is a system call. */
  get localAddr(): Addr {
    const raw = this.#raw;
    return this.#localAddr ??= this.#unixPath !== undefined
      ? { transport: "unix", path: this.#unixPath }
      : { transport: "tcp", hostname: raw.localAddress ?? "", port: raw.localPort ?? 0 };
  }

  get remoteAddr(): Addr {
    const raw = this.#raw;
    return this.#remoteAddr ??= this.#unixPath !== undefined
      ? { transport: "unix", path: "" }
      : { transport: "tcp", hostname: raw.remoteAddress ?? "", port: raw.remotePort ?? 0 };
  }

  get [PEER_HOST](): string | undefined {
    if (this.#unixPath !== undefined) return undefined;
    return this.#raw.remoteAddress ?? "";
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#readable === undefined ? this.#raw.read(p) : readableTaken();
  }

  [READ_WITH](p: Uint8Array, done: ReadDone): void {
    const raw = this.#raw as RawConn & RawReadingWith;
    if (this.#readable !== undefined) readableTaken().catch(done);
    else if (raw.readWith !== undefined) raw.readWith(p, done);
    else raw.read(p).then(done, done);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#raw.write(p);
  }

  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable === undefined) {
      const { source, highWaterMark } = this.#raw.source();
      this.#readable = connReadable(source, highWaterMark);
    }
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= connWritable(this);
  }

  closeWrite(): Promise<void> {
    return this.#raw.closeWrite();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#raw.close();
  }

  setNoDelay(on = true): void {
    if (this.#unixPath === undefined) this.#raw.setNoDelay(on);
  }

  setKeepAlive(on = true): void {
    if (this.#unixPath === undefined) this.#raw.setKeepAlive(on);
  }

  [RELEASE](first?: Uint8Array): void {
    this.#raw.release?.(first);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * The public Conn over a raw connection.
 *
 * @param raw The runtime's connection.
 * @param unixPath For a Unix connection, the listener's public path (its local address).
 */
export function toConn(raw: RawConn, unixPath: string | undefined): Conn {
  return new CoreConn(raw, unixPath);
}
