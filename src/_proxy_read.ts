// Reading the PROXY header of one accepted connection and applying the listener's policy to it:
// trusted source or not, header required or not. The bytes come from the node:net socket itself
// where the Conn has one (read in paused mode, and what follows the header unshifted back, all
// in one synchronous step), else from Conn.read() into one buffer. Either way the verdict is
// the parser's: a whole header, none, or a refusal; never half a header. Time limits are the
// listener's (it closes the connection, which ends the read here).

import { Duplex } from "node:stream";
import { parseProxyHeader, type ProxyHeader, type ProxyParseResult } from "./_proxy_header.ts";
import { proxiedConn } from "./_proxy_conn.ts";
import type { Conn } from "./types.ts";

/** Room for any header the parser accepts (its default limit), and for the bytes read with it. */
const BUFFER_SIZE = 4096;

/** What reading found: a verdict with the bytes read past what it covers, or the end of the connection. */
type Found =
  | { readonly result: ProxyParseResult; readonly rest: Uint8Array | undefined; readonly socket?: Duplex }
  | { readonly result: undefined };

const END: Found = { result: undefined };

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Reads from a node:net socket that nothing has read yet, in paused mode: each 'readable' takes
 * what is buffered and parses it, and on a verdict the bytes after the header (all of them for a
 * connection without one) go back into the socket at once, in the same step, before its 'end'
 * could be emitted. The socket is then left as it was found, untouched for whoever reads next.
 */
function fromSocket(socket: Duplex): Promise<Found> {
  return new Promise((resolve) => {
    let bytes: Uint8Array | undefined;
    const finish = (found: Found) => {
      socket.off("readable", step);
      socket.off("end", ended);
      socket.off("close", ended);
      resolve(found);
    };
    const ended = () => finish(END);
    function step(): void {
      for (let chunk: Uint8Array | null; (chunk = socket.read() as Uint8Array | null) !== null;) {
        bytes = bytes === undefined ? chunk : concat(bytes, chunk);
        const result = parseProxyHeader(bytes);
        if (result.kind === "more") continue;
        const from = result.kind === "header" ? result.consumed : 0;
        if (result.kind !== "invalid" && from < bytes.length) socket.unshift(bytes.subarray(from));
        return finish({ result, rest: undefined, socket });
      }
      if (socket.destroyed || socket.readableEnded) finish(END);
    }
    socket.on("readable", step);
    socket.on("end", ended);
    socket.on("close", ended);
    step();
  });
}

/** Reads through Conn.read() into one buffer; what was read past the header is returned as `rest`. */
async function fromConn(conn: Conn): Promise<Found> {
  const buf = new Uint8Array(BUFFER_SIZE);
  let have = 0;
  while (have < buf.length) {
    let n: number | null;
    try {
      n = await conn.read(buf.subarray(have));
    } catch {
      return END;
    }
    if (n === null) return END;
    have += n;
    const result = parseProxyHeader(buf.subarray(0, have));
    if (result.kind === "more") continue;
    const from = result.kind === "header" ? result.consumed : 0;
    return { result, rest: buf.subarray(from, have) };
  }
  return END;
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
 * @returns The Conn to hand out, or `undefined` once `conn` has been closed.
 * @example
 * ```ts ignore
 * const admitted = await admitConn(conn, { trusted: true, required: true });
 * if (admitted !== undefined) console.log(admitted.remoteAddr);
 * ```
 */
export async function admitConn(conn: Conn, admission: Admission): Promise<Conn | undefined> {
  if (!admission.trusted && admission.required) return refuse(conn);
  const native = conn.native;
  const found = native instanceof Duplex ? await fromSocket(native) : await fromConn(conn);
  const result = found.result;
  if (result === undefined || result.kind === "invalid" || result.kind === "more") return refuse(conn);
  let header: ProxyHeader | undefined;
  if (result.kind === "header") {
    if (!admission.trusted) return refuse(conn);
    header = result.header;
    // Asked before the socket is given the header's addresses: `conn.proxy.via` keeps the real ones.
    void conn.remoteAddr, void conn.localAddr;
  } else if (admission.trusted && admission.required) {
    return refuse(conn);
  }
  return proxiedConn(conn, header, found.rest, found.socket);
}

function refuse(conn: Conn): undefined {
  conn.close();
  return undefined;
}
