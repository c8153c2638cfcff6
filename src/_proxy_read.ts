// Reading the PROXY header of one accepted connection and applying the listener's policy to it:
// trusted source or not, header required or not. The bytes come from the Conn's read with a
// callback (readWith: on node:net and Bun no promise and no microtask) into a pooled buffer (a
// node:net socket handed to an http.Server afterwards gets the bytes after the header back:
// releaseNative). The read becomes the Conn handed out (a ProxiedConn of _proxy_conn.ts): one
// object a connection for both. The verdict is the parser's: a whole header, none, or a refusal;
// never half a header. The header most balancers send (v2, IPv4, no TLVs) is only recognised and
// its address bytes kept: the parser makes the header of them when it is first asked for. The
// verdict reaches the listener in the same tick as the bytes that decide it. Time limits are the
// listener's (it closes the connection, which ends the read here).

import { readWith } from "./_conn.ts";
import { parseReceived, PROXY_DEFAULT_MAX_LENGTH, type ProxyHeader } from "./_proxy_header.ts";
import { ProxiedConn } from "./_proxy_conn.ts";
import { isPlainV4, PLAIN_V4_LENGTH, plainV4Header } from "./_proxy_v2.ts";
import type { Conn } from "./types.ts";

/** The header of isPlainV4, told apart from a parsed one: kept unparsed until asked. */
const PLAIN: unique symbol = Symbol("polybind.plainV4");

/** Room for any header the parser accepts (its default limit), and for the bytes read with it. */
const BUFFER_SIZE = PROXY_DEFAULT_MAX_LENGTH;

/**
 * Read buffers, kept for the next connections: allocating 4 KiB costs more than a microsecond on
 * Node.js and Deno. A buffer goes back once its leftover bytes have been read (or dropped).
 */
const pool: Uint8Array[] = [];
const POOL_SIZE = 64;

/**
 * Where a header read ends: called once per read, `admitted` when the read (a Conn) is to be
 * handed out, else once the connection has been closed (refused, malformed, ended, or closed by
 * the owner).
 */
type Settle = (read: HeaderRead, admitted: boolean) => void;

/**
 * The PROXY header of one connection being read, and the policy applied to it: a header from a
 * trusted peer gives the Conn its addresses; no header passes when it is not required (or the
 * peer is untrusted and `required` is false); anything else (an untrusted header, a missing
 * required one, a malformed one, a connection that ends first) closes the connection. One
 * object a connection: the read, the owner's bookkeeping (`deadline`, `prev`, `next`, `queued`)
 * so that the owner needs none of its own, and, once admitted, the Conn to hand out.
 *
 * @example
 * ```ts ignore
 * const read = new HeaderRead((read, admitted) => admitted && queue.push(read), conn, true, true, Date.now() + 5000);
 * read.start(); // the callback follows, once, admitted or not
 * ```
 */
export class HeaderRead extends ProxiedConn {
  /** When the owner closes it if no verdict came (a time in milliseconds, as Date.now()). */
  readonly deadline: number;
  /** The owner's: the reads before and after this one, and whether it is still among them. */
  prev: HeaderRead | undefined = undefined;
  next: HeaderRead | undefined = undefined;
  queued = false;
  readonly #settle: Settle;
  readonly #trusted: boolean;
  readonly #required: boolean;
  readonly #buf: Uint8Array;
  #have = 0;
  /**
   * A plain header's (isPlainV4) family byte, and its 12 address bytes as six 16-bit words
   * (small integers: nothing allocated a connection), kept for unparsedHeader().
   */
  #family = 0;
  #w0 = 0;
  #w1 = 0;
  #w2 = 0;
  #w3 = 0;
  #w4 = 0;
  #w5 = 0;

  /**
   * @param settle Told the verdict, once.
   * @param conn The accepted connection, not yet read.
   * @param trusted Its peer is a trusted proxy (or a Unix socket peer).
   * @param required A trusted peer must send a header.
   * @param deadline When the owner will close it.
   */
  constructor(settle: Settle, conn: Conn, trusted: boolean, required: boolean, deadline: number) {
    super(conn);
    this.#settle = settle;
    this.#trusted = trusted;
    this.#required = required;
    this.deadline = deadline;
    this.#buf = pool.pop() ?? new Uint8Array(BUFFER_SIZE);
  }

  /** Starts reading; the verdict may come before this returns (bytes already buffered). */
  start(): void {
    readWith(this.conn, this.#buf, this.#onRead);
  }

  readonly #onRead = (result: unknown): void => {
    // End of stream, an error, or the owner closed the connection.
    if (typeof result !== "number") return this.#refuse();
    const buf = this.#buf;
    const have = this.#have += result;
    if (isPlainV4(buf, have)) return this.#pass(PLAIN, PLAIN_V4_LENGTH);
    const parsed = parseReceived(buf, have, BUFFER_SIZE);
    switch (parsed.kind) {
      case "more":
        if (have === buf.length) return this.#refuse();
        return readWith(this.conn, buf.subarray(have), this.#onRead);
      case "none":
        return this.#pass(undefined, 0);
      case "header":
        return this.#pass(parsed.header, parsed.consumed);
      default:
        return this.#refuse();
    }
  };

  /**
   * A header passes from a trusted proxy; no header where none is required of this peer. The
   * header most balancers send (PLAIN: isPlainV4's) is kept unparsed, made if asked.
   */
  #pass(header: ProxyHeader | typeof PLAIN | undefined, consumed: number): void {
    const trusted = this.#trusted;
    if (header !== undefined ? !trusted : trusted && this.#required) return this.#refuse();
    if (header !== PLAIN) this.admit(header, this.#buf, consumed, this.#have);
    else {
      this.#keepPlain();
      this.admitUnparsed(this.#buf, consumed, this.#have);
    }
    this.#settle(this, true);
  }

  /** Keeps what unparsedHeader() needs of the plain header in the buffer. */
  #keepPlain(): void {
    const buf = this.#buf;
    this.#family = buf[13]!;
    this.#w0 = (buf[16]! << 8) | buf[17]!;
    this.#w1 = (buf[18]! << 8) | buf[19]!;
    this.#w2 = (buf[20]! << 8) | buf[21]!;
    this.#w3 = (buf[22]! << 8) | buf[23]!;
    this.#w4 = (buf[24]! << 8) | buf[25]!;
    this.#w5 = (buf[26]! << 8) | buf[27]!;
  }

  protected override unparsedHeader(): ProxyHeader {
    return plainV4Header(this.#family, [this.#w0, this.#w1, this.#w2, this.#w3, this.#w4, this.#w5]);
  }

  #refuse(): void {
    this.released();
    this.conn.close();
    this.#settle(this, false);
  }

  /** Gives the buffer back to the pool, once nothing refers to it. */
  protected override released(): void {
    if (pool.length < POOL_SIZE) pool.push(this.#buf);
  }
}
