// A connection after its PROXY header: the Conn a listener hands out once the header has been
// read (or found absent), with the client's addresses from the header, `proxy` saying what the
// header said, and the bytes read past the header given back first: by read() and `readable`,
// or, when its node:net socket is handed to an http.Server (releaseNative), put back into the
// socket, which then shows the header's addresses (showProxyAddrs). Reading the header:
// _proxy_read.ts, whose HeaderRead is the subclass of this file's ProxiedConn that it hands out.

import { readableTaken, RELEASE, type Releasing } from "./_conn.ts";
import { ipFamily } from "./_ip.ts";
import type { ProxyHeader } from "./_proxy_header.ts";
import type { ProxyInfo } from "./_proxy_info.ts";
import type { Addr, Conn } from "./types.ts";

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

/**
 * A Conn whose addresses come from its PROXY header, and whose first bytes are `rest` (read past
 * the header, or past the first bytes of a connection without one), both set by `admit()` before
 * it is handed out. Everything else is the inner Conn's. The header read of _proxy_read.ts is
 * this class's subclass: one object a connection for the read and the Conn it becomes.
 */
export class ProxiedConn implements Conn {
  readonly #conn: Conn;
  #header: ProxyHeader | undefined = undefined;
  /** Set by admitUnparsed(): the header is made by unparsedHeader() when first asked. */
  #unparsed = false;
  /** The leftover bytes: `#rest[#at .. #end]`, held without a view (no subarray a connection). */
  #rest: Uint8Array | undefined = undefined;
  #at = 0;
  #end = 0;
  #readable?: ReadableStream<Uint8Array>;
  #proxy?: ProxyInfo;
  #remote?: Addr;
  #local?: Addr;

  /** @param inner The accepted connection. */
  constructor(inner: Conn) {
    this.#conn = inner;
  }

  /** The accepted connection (a getter: not an own property of the Conn handed out). */
  get conn(): Conn {
    return this.#conn;
  }

  /**
   * Sets what the header said (`undefined` for a connection let through without one) and the
   * bytes read past it, `rest[at .. end]`, which come first; `released()` follows at once when
   * there are none.
   */
  protected admit(header: ProxyHeader | undefined, rest: Uint8Array | undefined, at: number, end: number): void {
    this.#header = header;
    this.#keep(rest, at, end);
  }

  /**
   * admit() of a header whose bytes the subclass has kept, unparsed: unparsedHeader() makes it
   * when the header or an address is first asked (a server that never asks pays for no parse).
   */
  protected admitUnparsed(rest: Uint8Array, at: number, end: number): void {
    this.#unparsed = true;
    this.#keep(rest, at, end);
  }

  /** The header that admitUnparsed() said the subclass kept. */
  protected unparsedHeader(): ProxyHeader | undefined {
    return undefined;
  }

  /** The header, made now where it was kept unparsed. */
  #headerNow(): ProxyHeader | undefined {
    if (this.#unparsed) {
      this.#unparsed = false;
      this.#header = this.unparsedHeader();
    }
    return this.#header;
  }

  #keep(rest: Uint8Array | undefined, at: number, end: number): void {
    if (rest !== undefined && end > at) {
      this.#rest = rest;
      this.#at = at;
      this.#end = end;
    } else this.released();
  }

  /** A copy of the leftover bytes, which are then forgotten; undefined when there are none. */
  #takeRest(): Uint8Array | undefined {
    const copy = this.#rest?.slice(this.#at, this.#end);
    this.#drop();
    return copy;
  }

  /** Called once, when the bytes given to admit() have been read, copied or dropped. */
  protected released(): void {}

  /** Forgets the leftover bytes, and says their buffer is free. */
  #drop(): void {
    if (this.#rest === undefined) return;
    this.#rest = undefined;
    this.released();
  }

  /** Made on first use, as the addresses are: a server that never asks pays for neither. */
  get proxy(): ProxyInfo | undefined {
    const header = this.#headerNow();
    if (header === undefined || this.#proxy !== undefined) return this.#proxy;
    const inner = this.#conn;
    // Asked of the inner Conn on first use (on node:net each is a system call), then kept.
    let remote: Addr | undefined, local: Addr | undefined;
    const via = {
      get remoteAddr() {
        return remote ??= inner.remoteAddr;
      },
      get localAddr() {
        return local ??= inner.localAddr;
      },
    };
    return this.#proxy = { ...header, via };
  }

  get localAddr(): Addr {
    const header = this.#headerNow();
    return this.#local ??= (header === undefined ? undefined : headerAddr(header, "destination")) ??
      this.#conn.localAddr;
  }

  get remoteAddr(): Addr {
    const header = this.#headerNow();
    return this.#remote ??= (header === undefined ? undefined : headerAddr(header, "source")) ??
      this.#conn.remoteAddr;
  }

  get native(): unknown {
    return this.#conn.native;
  }

  read(p: Uint8Array): Promise<number | null> {
    const rest = this.#rest;
    if (rest === undefined) return this.#readable === undefined ? this.#conn.read(p) : readableTaken();
    const at = this.#at;
    const n = Math.min(p.length, this.#end - at);
    copyBytes(rest, at, n, p);
    if (at + n < this.#end) this.#at = at + n;
    else this.#drop();
    return Promise.resolve(n);
  }

  /** The inner Conn's own stream when nothing is left over; else the leftover bytes, then it. */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable !== undefined) return this.#readable;
    // The stream's reader keeps its chunks: a copy, so that the buffer goes back to its pool.
    const first = this.#takeRest();
    if (first === undefined) return this.#readable = this.#conn.readable;
    const reader = this.#conn.readable.getReader();
    return this.#readable = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(first),
      pull: (controller) =>
        reader.read().then(({ done, value }) => done ? controller.close() : controller.enqueue(value)),
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#conn.writable;
  }

  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  close(): void {
    this.#drop();
    this.#conn.close();
  }

  setNoDelay(on?: boolean): void {
    this.#conn.setNoDelay(on);
  }

  setKeepAlive(on?: boolean): void {
    this.#conn.setKeepAlive(on);
  }

  /** The inner Conn's release, with the leftover bytes first (a copy: their buffer goes back to its pool). */
  [RELEASE](): void {
    (this.#conn as Releasing)[RELEASE]?.(this.#takeRest());
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Copies `n` bytes of `from`, from `at`, to the start of `to`: by a loop where they are few, as
 * a request's first bytes are (60 bytes: 30 ns on Bun against 63 ns for set() of a subarray; on
 * Node.js either costs 50-90 ns).
 */
function copyBytes(from: Uint8Array, at: number, n: number, to: Uint8Array): void {
  if (n > 64) return to.set(from.subarray(at, at + n));
  for (let i = 0; i < n; i++) to[i] = from[at + i]!;
}

/** A ProxiedConn made whole at once, whose `release` gives its leftover bytes' buffer back. */
class AdmittedConn extends ProxiedConn {
  readonly #release: (() => void) | undefined;

  constructor(inner: Conn, header: ProxyHeader | undefined, rest: Uint8Array | undefined, release?: () => void) {
    super(inner);
    this.#release = release;
    this.admit(header, rest, 0, rest?.length ?? 0);
  }

  protected override released(): void {
    this.#release?.();
  }
}

/**
 * The Conn to hand out for `inner` after its header. `rest` are bytes read past the header that
 * `inner` will not give again.
 *
 * @param inner The accepted connection.
 * @param header Its header, or `undefined` for a connection let through without one.
 * @param rest Bytes read past the header (or of a connection without one) that come first.
 * @param release Gives the buffer `rest` lies in back to its pool: called once, when `rest` has
 *   been read, copied or dropped.
 * @returns The Conn: `inner` itself when there is neither a header nor bytes to give back.
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
  release?: () => void,
): Conn {
  if (header === undefined && (rest === undefined || rest.length === 0)) {
    release?.();
    return inner;
  }
  return new AdmittedConn(inner, header, rest, release);
}

/**
 * Gives the node:net socket of a Conn after a PROXY header the header's addresses
 * (`remoteAddress`, `remotePort`, `remoteFamily`, `localAddress`, `localPort`, `address()`), for
 * an http.Server handed that socket: `req.socket.remoteAddress` is then the client. The socket's
 * own addresses stay in `conn.proxy.via`. Does nothing for a Conn without a header that names
 * addresses.
 *
 * @param conn A Conn from a listener that reads the PROXY protocol.
 * @param socket Its `native` node:net socket.
 * @example
 * ```ts ignore
 * if (conn.native instanceof Duplex) showProxyAddrs(conn, conn.native);
 * ```
 */
export function showProxyAddrs(conn: Conn, socket: object): void {
  const proxy = conn.proxy;
  if (proxy === undefined) return;
  const remote = headerAddr(proxy, "source");
  const local = headerAddr(proxy, "destination");
  if (remote?.transport !== "tcp" || local?.transport !== "tcp") return;
  // Kept first: the inner Conn asks the socket on first use, which from now on would say the header's.
  void proxy.via.remoteAddr, void proxy.via.localAddr;
  const address = { address: local.hostname, family: ipFamily(local.hostname), port: local.port };
  const value = (v: unknown) => ({ value: v, configurable: true });
  Object.defineProperties(socket, {
    remoteAddress: value(remote.hostname),
    remotePort: value(remote.port),
    remoteFamily: value(ipFamily(remote.hostname)),
    localAddress: value(local.hostname),
    localPort: value(local.port),
    localFamily: value(address.family),
    address: value(() => ({ ...address })),
  });
}
