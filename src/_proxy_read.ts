// Reading the PROXY header of one accepted connection and applying the listener's policy to it:
// trusted source or not, header required or not. The bytes come from the node:net socket itself
// where the Conn has one (read in paused mode, and what follows the header unshifted back, all
// in one synchronous step), else from Conn.read() into one buffer. Either way the verdict is
// the parser's: a whole header, none, or a refusal; never half a header. Callbacks rather than
// promises: the verdict reaches the listener in the same tick as the bytes that decide it. Time
// limits are the listener's (it closes the connection, which ends the read here).

import { Duplex } from "node:stream";
import { parseProxyHeader, type ProxyParseResult } from "./_proxy_header.ts";
import { proxiedConn } from "./_proxy_conn.ts";
import type { Conn } from "./types.ts";

/** Room for any header the parser accepts (its default limit), and for the bytes read with it. */
const BUFFER_SIZE = 4096;

/**
 * Takes the verdict on the first bytes, with the bytes read past what it covers (`undefined`
 * where they went back into the socket) and what gives their buffer back to its pool;
 * `undefined` when the connection ended first.
 */
type OnVerdict = (
  result: ProxyParseResult | undefined,
  rest: Uint8Array | undefined,
  release?: () => void,
) => void;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Reads from a node:net socket that nothing has read yet, in paused mode: each 'readable' takes
 * what is buffered and parses it; on a verdict the listeners go, then the bytes after the header
 * (all of them for a connection without one) go back into the socket in the same step, before
 * its 'end' could be emitted. The socket is left as it was found, for whoever reads next.
 */
function fromSocket(socket: Duplex, done: OnVerdict): void {
  let bytes: Uint8Array | undefined;
  const finish = (result: ProxyParseResult | undefined, back: Uint8Array | undefined) => {
    socket.off("readable", step);
    socket.off("end", ended);
    socket.off("close", ended);
    if (back !== undefined && back.length > 0) socket.unshift(back);
    done(result, undefined);
  };
  const ended = () => finish(undefined, undefined);
  function step(): void {
    for (let chunk: Uint8Array | null; (chunk = socket.read() as Uint8Array | null) !== null;) {
      bytes = bytes === undefined ? chunk : concat(bytes, chunk);
      const result = parseProxyHeader(bytes);
      if (result.kind === "more") continue;
      const from = result.kind === "header" ? result.consumed : 0;
      return finish(result, result.kind === "invalid" ? undefined : bytes.subarray(from));
    }
    if (socket.destroyed || socket.readableEnded) ended();
  }
  socket.on("readable", step);
  socket.on("end", ended);
  socket.on("close", ended);
  // What is buffered already is read now; else 'readable' says when bytes come.
  if (socket.readableLength > 0 || socket.destroyed || socket.readableEnded) step();
}

/**
 * Read buffers, kept for the next connections: allocating 4 KiB costs more than a microsecond on
 * Node.js and Deno. A buffer goes back once its leftover bytes have been read (or dropped).
 */
const pool: Uint8Array[] = [];
const POOL_SIZE = 64;

function takeBuffer(): Uint8Array {
  return pool.pop() ?? new Uint8Array(BUFFER_SIZE);
}

function giveBack(buf: Uint8Array): void {
  if (pool.length < POOL_SIZE) pool.push(buf);
}

/**
 * Reads through Conn.read() into a pooled buffer; what was read past the header is `rest`, and
 * `release` gives the buffer back (called at once when the verdict holds no bytes).
 */
function fromConn(conn: Conn, done: OnVerdict): void {
  const buf = takeBuffer();
  let have = 0;
  const release = () => giveBack(buf);
  const end = () => {
    release();
    done(undefined, undefined);
  };
  const next = (): void => {
    if (have === buf.length) return end();
    conn.read(buf.subarray(have)).then((n) => {
      if (n === null) return end();
      have += n;
      const result = parseProxyHeader(buf.subarray(0, have));
      if (result.kind === "more") return next();
      if (result.kind === "invalid") return end();
      done(result, buf.subarray(result.kind === "header" ? result.consumed : 0, have), release);
    }, end);
  };
  next();
}

/** The policy of one connection: whether its peer may send a header, and whether it must. */
export interface Admission {
  /** The peer is a trusted proxy (or a Unix socket peer). */
  readonly trusted: boolean;
  /** A trusted peer must send a header. */
  readonly required: boolean;
}

/**
 * Reads the PROXY header of `conn` and applies the policy: a header from a trusted peer gives
 * the Conn its addresses; no header passes when it is not required (or the peer is untrusted
 * and `required` is false); anything else (an untrusted header, a missing required one, a
 * malformed one, a connection that ends first) closes `conn`. An untrusted peer when a header
 * is required is closed without reading.
 *
 * @param conn The accepted connection, not yet read.
 * @param admission Whether its peer is trusted, and whether a header is required.
 * @param done Called once, with the Conn to hand out, or `undefined` once `conn` has been closed.
 * @example
 * ```ts ignore
 * admitConn(conn, { trusted: true, required: true }, (admitted) => admitted && queue.push(admitted));
 * ```
 */
export function admitConn(conn: Conn, admission: Admission, done: (conn: Conn | undefined) => void): void {
  const { trusted, required } = admission;
  if (!trusted && required) return refuse(conn, done);
  const onVerdict: OnVerdict = (result, rest, release) => {
    // A header passes from a trusted proxy; no header where none is required of this peer.
    const header = result?.kind === "header" ? result.header : undefined;
    const passes = header !== undefined ? trusted : result?.kind === "none" && !(trusted && required);
    if (passes) return done(proxiedConn(conn, header, rest, release));
    release?.();
    refuse(conn, done);
  };
  const native = conn.native;
  if (native instanceof Duplex) fromSocket(native, onVerdict);
  else fromConn(conn, onVerdict);
}

function refuse(conn: Conn, done: (conn: Conn | undefined) => void): void {
  conn.close();
  done(undefined);
}
