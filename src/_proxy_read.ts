// Reading the PROXY header of one accepted connection and applying the listener's policy to it:
// trusted source or not, header required or not. The bytes come from Conn.read() into a pooled
// buffer, the Conn's fastest path on every runtime (a node:net socket handed to an http.Server
// afterwards gets the bytes after the header back: releaseNative). The verdict is the parser's:
// a whole header, none, or a refusal; never half a header. Callbacks rather than promises past
// the read: the verdict reaches the listener in the same tick as the bytes that decide it. Time
// limits are the listener's (it closes the connection, which ends the read here).

import { parseProxyHeader, type ProxyParseResult } from "./_proxy_header.ts";
import { proxiedConn } from "./_proxy_conn.ts";
import type { Conn } from "./types.ts";

/** Room for any header the parser accepts (its default limit), and for the bytes read with it. */
const BUFFER_SIZE = 4096;

/**
 * Takes the verdict on the first bytes, with the bytes read past what it covers and what gives
 * their buffer back to its pool; `undefined` when the connection ended first.
 */
type OnVerdict = (
  result: ProxyParseResult | undefined,
  rest: Uint8Array | undefined,
  release?: () => void,
) => void;

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
    conn.read(have === 0 ? buf : buf.subarray(have)).then((n) => {
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
  fromConn(conn, onVerdict);
}

function refuse(conn: Conn, done: (conn: Conn | undefined) => void): void {
  conn.close();
  done(undefined);
}
