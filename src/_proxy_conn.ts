// A connection after its PROXY header: the Conn a listener hands out once the header has been
// read (or found absent), with the client's addresses from the header, `proxy` saying what the
// header said, and the bytes read past the header given back first. On a node:net socket the
// header is read from the socket itself and those bytes are unshifted into it, so the Conn and
// the socket stay the runtime's own (an http.Server takes the socket as it is); elsewhere the
// Conn reads them first from a buffer. Reading the header: _proxy_read.ts.

import type { ProxyHeader } from "./_proxy_header.ts";
import type { Addr, Conn } from "./types.ts";

/**
 * What a connection's PROXY header said: the header (switch on `transport` for the addresses,
 * pass it to the TLV readers such as `getAuthority(conn.proxy)`) and the addresses of the
 * connection the proxy made.
 *
 * @example
 * ```ts
 * import type { ProxyInfo } from "./_proxy_conn.ts";
 * function describe(info: ProxyInfo): string {
 *   const via = info.via.remoteAddr;
 *   const proxy = via.transport === "tcp" ? via.hostname : via.path;
 *   return info.transport === "tcp4" || info.transport === "tcp6"
 *     ? `${info.source.hostname} via ${proxy}`
 *     : `${info.command} from ${proxy}`;
 * }
 * ```
 */
export type ProxyInfo = ProxyHeader & {
  /**
   * The connection as the socket has it: `remoteAddr` is the proxy that sent the header,
   * `localAddr` the address it connected to. (The Conn's own addresses are the header's.)
   */
  readonly via: { readonly remoteAddr: Addr; readonly localAddr: Addr };
};

/** The header's address for one end, or undefined where the connection keeps its own. */
function headerAddr(header: ProxyHeader, end: "source" | "destination"): Addr | undefined {
  switch (header.transport) {
    case "unspec":
      return undefined;
    case "unix":
    case "unixgram":
      return { transport: "unix", path: header[end].path };
    default:
      // A stream connection's address is TCP's, even for a header that says UDP.
      return { transport: "tcp", hostname: header[end].hostname, port: header[end].port };
  }
}

/** The addresses of a node:net socket, as the header gives them, for an http.Server handed the socket. */
function setSocketAddrs(socket: object, remote: Addr | undefined, local: Addr | undefined): void {
  const props: PropertyDescriptorMap = {};
  const family = (hostname: string) => hostname.includes(":") ? "IPv6" : "IPv4";
  if (remote?.transport === "tcp") {
    props.remoteAddress = { value: remote.hostname, configurable: true };
    props.remotePort = { value: remote.port, configurable: true };
    props.remoteFamily = { value: family(remote.hostname), configurable: true };
  }
  if (local?.transport === "tcp") {
    const address = { address: local.hostname, family: family(local.hostname), port: local.port };
    props.localAddress = { value: local.hostname, configurable: true };
    props.localPort = { value: local.port, configurable: true };
    props.localFamily = { value: address.family, configurable: true };
    props.address = { value: () => ({ ...address }), configurable: true };
  }
  Object.defineProperties(socket, props);
}

/** What read() does once `readable` has been taken. */
function readableTaken(): Promise<never> {
  return Promise.reject(new TypeError("Conn.read() cannot be used once Conn.readable has been taken"));
}

/**
 * A Conn whose addresses come from its PROXY header, and whose first bytes are `rest` (read
 * past the header, or past the first bytes of a connection without one). Everything else is the
 * inner Conn's.
 */
class ProxiedConn implements Conn {
  readonly #inner: Conn;
  readonly #remote: Addr | undefined;
  readonly #local: Addr | undefined;
  #rest: Uint8Array | undefined;
  #readable?: ReadableStream<Uint8Array>;
  readonly proxy: ProxyInfo | undefined;

  constructor(inner: Conn, header: ProxyHeader | undefined, rest: Uint8Array | undefined) {
    this.#inner = inner;
    this.#rest = rest !== undefined && rest.length > 0 ? rest : undefined;
    if (header === undefined) return;
    this.#remote = headerAddr(header, "source");
    this.#local = headerAddr(header, "destination");
    const via = {
      get remoteAddr() {
        return inner.remoteAddr;
      },
      get localAddr() {
        return inner.localAddr;
      },
    };
    this.proxy = { ...header, via };
  }

  get localAddr(): Addr {
    return this.#local ?? this.#inner.localAddr;
  }

  get remoteAddr(): Addr {
    return this.#remote ?? this.#inner.remoteAddr;
  }

  get native(): unknown {
    return this.#inner.native;
  }

  read(p: Uint8Array): Promise<number | null> {
    const rest = this.#rest;
    if (rest === undefined) return this.#readable === undefined ? this.#inner.read(p) : readableTaken();
    const n = Math.min(p.length, rest.length);
    p.set(rest.subarray(0, n));
    this.#rest = n < rest.length ? rest.subarray(n) : undefined;
    return Promise.resolve(n);
  }

  /** The inner Conn's own stream when nothing is left over; else the leftover bytes, then it. */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable !== undefined) return this.#readable;
    const rest = this.#rest;
    if (rest === undefined) return this.#readable = this.#inner.readable;
    this.#rest = undefined;
    const reader = this.#inner.readable.getReader();
    return this.#readable = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(rest),
      pull: (controller) =>
        reader.read().then(({ done, value }) => done ? controller.close() : controller.enqueue(value)),
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#inner.writable;
  }

  write(p: Uint8Array): Promise<number> {
    return this.#inner.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#inner.closeWrite();
  }

  close(): void {
    this.#rest = undefined;
    this.#inner.close();
  }

  setNoDelay(on?: boolean): void {
    this.#inner.setNoDelay(on);
  }

  setKeepAlive(on?: boolean): void {
    this.#inner.setKeepAlive(on);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * The Conn to hand out for `inner` after its header. `rest` are bytes read past the header that
 * `inner` will not give again (none on a node:net socket, where they were unshifted into it);
 * there, with a header that names addresses, `native` is given the header's addresses too
 * (`remoteAddress`, `remotePort`, `localAddress`, `localPort`, `address()`), so that an
 * http.Server handed the socket sees the client.
 *
 * @param inner The accepted connection.
 * @param header Its header, or `undefined` for a connection let through without one.
 * @param rest Bytes read past the header (or of a connection without one) that come first.
 * @param native The node:net socket the header was read from, if it was.
 * @returns The Conn.
 * @example
 * ```ts ignore
 * const conn = proxiedConn(inner, header, rest, undefined);
 * console.assert(conn.remoteAddr.transport === "tcp");
 * ```
 */
export function proxiedConn(
  inner: Conn,
  header: ProxyHeader | undefined,
  rest: Uint8Array | undefined,
  native: object | undefined,
): Conn {
  if (header === undefined && (rest === undefined || rest.length === 0)) return inner;
  const conn = new ProxiedConn(inner, header, rest);
  if (native !== undefined && header !== undefined) {
    setSocketAddrs(native, headerAddr(header, "source"), headerAddr(header, "destination"));
  }
  return conn;
}
