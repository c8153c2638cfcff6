// The PROXY protocol header (haproxy's doc/proxy-protocol.txt, versions 1 and 2): its shape, and
// an incremental parser a connection wrapper feeds with the bytes received so far. The parser is
// total: it returns "more", "none", a whole header, or a refusal with a reason; it never throws
// on any bytes, never reads past the length a header declares, and never returns half a header.
// Version 1 lines are read by _proxy_v1.ts, version 2 headers by _proxy_v2.ts.

import { parseV1 } from "./_proxy_v1.ts";
import { parseV2 } from "./_proxy_v2.ts";

/**
 * What the proxied connection was, named as Go's `net` names networks: TCP or UDP over IPv4 or
 * IPv6, a Unix stream or datagram socket, or `"unspec"` when the header gives no addresses.
 */
export type ProxyTransport = "tcp4" | "tcp6" | "udp4" | "udp6" | "unix" | "unixgram" | "unspec";

/** One end of a proxied TCP or UDP connection. */
export interface ProxyNetEndpoint {
  /** IP address: dotted IPv4, or IPv6 as Node's net prints it (`"::1"`, `"::ffff:127.0.0.1"`). */
  readonly hostname: string;
  /** Port, from 0 to 65535. */
  readonly port: number;
}

/** One end of a proxied Unix socket connection. */
export interface ProxyUnixEndpoint {
  /** Socket path; `""` for an unnamed socket, `"\0name"` for a Linux abstract one. */
  readonly path: string;
}

/** One type-length-value field of a version 2 header; see `_proxy_tlv.ts` for the known types. */
export interface ProxyTlv {
  /** Type, from 0 to 255. */
  readonly type: number;
  /** Value (a copy: it never shares memory with the bytes parsed). */
  readonly value: Uint8Array;
}

/** What every PROXY header says. */
export interface ProxyHeaderCommon {
  /** 1 for the text form, 2 for the binary one. */
  readonly version: 1 | 2;
  /**
   * `"proxy"`: the connection was relayed for a client. `"local"`: the proxy made it on its own
   * (a health check, a v2 LOCAL command) or could not say (v1 `UNKNOWN`): keep the real peer's
   * address, as the spec requires.
   */
  readonly command: "proxy" | "local";
  /** The TLVs of a version 2 header, in order (always empty for version 1). */
  readonly tlvs: readonly ProxyTlv[];
}

/** A header that names the client's IP address and port. */
export interface ProxyNetHeader extends ProxyHeaderCommon {
  /** TCP or UDP, over IPv4 or IPv6. */
  readonly transport: "tcp4" | "tcp6" | "udp4" | "udp6";
  /** The client: what the connection's remote address should be. */
  readonly source: ProxyNetEndpoint;
  /** The address the client connected to: what the local address should be. */
  readonly destination: ProxyNetEndpoint;
}

/** A header that names the client's Unix socket. */
export interface ProxyUnixHeader extends ProxyHeaderCommon {
  /** A stream or datagram Unix socket. */
  readonly transport: "unix" | "unixgram";
  /** The client's socket. */
  readonly source: ProxyUnixEndpoint;
  /** The socket the client connected to. */
  readonly destination: ProxyUnixEndpoint;
}

/**
 * A header without addresses: a LOCAL command, a v1 `UNKNOWN` line, or a v2 PROXY command over
 * AF_UNSPEC. The connection keeps its real addresses.
 */
export interface ProxyUnspecHeader extends ProxyHeaderCommon {
  /** Always `"unspec"`. */
  readonly transport: "unspec";
}

/**
 * A parsed PROXY header. Its addresses, when it has them (`transport` is not `"unspec"`),
 * replace the connection's own. A `switch` on `transport` narrows it to the right shape.
 *
 * @example
 * ```ts
 * import type { ProxyHeader } from "./_proxy_header.ts";
 * function client(header: ProxyHeader): string | undefined {
 *   switch (header.transport) {
 *     case "unspec":
 *       return undefined; // keep the connection's own address
 *     case "unix":
 *     case "unixgram":
 *       return header.source.path;
 *     default:
 *       return `${header.source.hostname}:${header.source.port}`;
 *   }
 * }
 * const header: ProxyHeader = {
 *   version: 2,
 *   command: "proxy",
 *   transport: "tcp4",
 *   source: { hostname: "203.0.113.7", port: 51000 },
 *   destination: { hostname: "192.0.2.1", port: 443 },
 *   tlvs: [],
 * };
 * console.assert(client(header) === "203.0.113.7:51000");
 * ```
 */
export type ProxyHeader = ProxyNetHeader | ProxyUnixHeader | ProxyUnspecHeader;

/**
 * What {@linkcode parseProxyHeader} found in the bytes received so far.
 *
 * @example
 * ```ts
 * import { parseProxyHeader, type ProxyParseResult } from "./_proxy_header.ts";
 * const result: ProxyParseResult = parseProxyHeader(new TextEncoder().encode("PROXY TCP9 "));
 * console.assert(result.kind === "invalid" && result.reason.startsWith("Version 1 protocol"));
 * ```
 */
export type ProxyParseResult =
  /** The bytes so far are the start of a header (or too few to say): read more. */
  | { readonly kind: "more" }
  /** A whole header: the first `consumed` bytes; the bytes after them are the application's. */
  | { readonly kind: "header"; readonly header: ProxyHeader; readonly consumed: number }
  /** The first bytes match neither signature: this connection has no PROXY header. */
  | { readonly kind: "none" }
  /** A malformed header: close the connection. `reason` is a short sentence for a log. */
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * Options of {@linkcode parseProxyHeader}.
 *
 * @example
 * ```ts
 * import { parseProxyHeader, type ProxyHeaderOptions } from "./_proxy_header.ts";
 * const options: ProxyHeaderOptions = { maxLength: 512 };
 * const big = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x02, 0x00]);
 * console.assert(parseProxyHeader(big, options).kind === "invalid");
 * ```
 */
export interface ProxyHeaderOptions {
  /**
   * Longest header accepted, in bytes, from 16 to 65551 (16 + the largest v2 length). A v1 line
   * is never longer than 107 bytes anyway.
   * @default {4096}
   */
  maxLength?: number;
}

/**
 * The longest header the spec allows: a 16-byte v2 header and 65535 bytes of addresses and TLVs.
 *
 * @example
 * ```ts
 * import { PROXY_MAX_LENGTH } from "./_proxy_header.ts";
 * console.assert(PROXY_MAX_LENGTH === 65551);
 * ```
 */
export const PROXY_MAX_LENGTH: number = 16 + 65535;
/**
 * The default of {@linkcode ProxyHeaderOptions.maxLength}: room for any header a load balancer
 * sends (HAProxy's with SSL TLVs, a unique ID and a CRC32C is a few hundred bytes).
 *
 * @example
 * ```ts
 * import { PROXY_DEFAULT_MAX_LENGTH } from "./_proxy_header.ts";
 * console.assert(PROXY_DEFAULT_MAX_LENGTH === 4096);
 * ```
 */
export const PROXY_DEFAULT_MAX_LENGTH: number = 4096;

const MORE: ProxyParseResult = Object.freeze({ kind: "more" });
const NONE: ProxyParseResult = Object.freeze({ kind: "none" });

function checkMaxLength(options: ProxyHeaderOptions | undefined): number {
  const max = options?.maxLength ?? PROXY_DEFAULT_MAX_LENGTH;
  if (!Number.isInteger(max) || max < 16 || max > PROXY_MAX_LENGTH) {
    throw new RangeError(
      `Cannot parse a PROXY header as 'maxLength' must be an integer from 16 to ${PROXY_MAX_LENGTH}: current value is ${
        String(max)
      }`,
    );
  }
  return max;
}

/**
 * Parses the PROXY header (v1 or v2) at the start of the bytes a connection received so far.
 * Call it again with all the bytes so far each time more arrive, until it returns something
 * other than `"more"`. It decides `"none"` at the first byte that differs from both signatures
 * ("PROXY" and v2's 12 bytes), and refuses a malformed header as soon as a byte shows it is one.
 *
 * @param bytes The bytes received so far, from the first.
 * @param options The longest header accepted.
 * @returns `"more"`, `"none"`, `"header"` with the header and the bytes it took, or `"invalid"`
 *   with a reason. Never throws because of `bytes`.
 * @throws {RangeError} `options.maxLength` is not an integer from 16 to 65551.
 * @example
 * ```ts
 * import { parseProxyHeader } from "./_proxy_header.ts";
 * const bytes = new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nGET /");
 * const result = parseProxyHeader(bytes);
 * if (result.kind !== "header" || result.header.transport !== "tcp4") throw new Error("no header");
 * console.assert(result.header.source.hostname === "203.0.113.7" && result.consumed === 44);
 * console.assert(parseProxyHeader(bytes.subarray(0, 20)).kind === "more");
 * console.assert(parseProxyHeader(new TextEncoder().encode("GET / HTTP/1.1")).kind === "none");
 * ```
 */
export function parseProxyHeader(bytes: Uint8Array, options?: ProxyHeaderOptions): ProxyParseResult {
  return parseReceived(bytes, bytes.length, checkMaxLength(options));
}

/**
 * {@linkcode parseProxyHeader} of the first `n` bytes of a buffer, without a view of them, with
 * a checked limit: for a reader that receives into a buffer of its own.
 *
 * @param buffer Holds the bytes received so far, from its start.
 * @param n How many bytes have been received: nothing past them is read.
 * @param max The longest header accepted, from 16 to 65551.
 * @returns What {@linkcode parseProxyHeader} returns for `buffer.subarray(0, n)`.
 * @example
 * ```ts
 * import { parseReceived } from "./_proxy_header.ts";
 * const buffer = new Uint8Array(64);
 * buffer.set(new TextEncoder().encode("PROXY UNKNOWN\r\nGET"));
 * console.assert(parseReceived(buffer, 10, 4096).kind === "more");
 * console.assert(parseReceived(buffer, 18, 4096).kind === "header");
 * ```
 */
export function parseReceived(buffer: Uint8Array, n: number, max: number): ProxyParseResult {
  if (n === 0) return MORE;
  if (buffer[0] === 0x0d) return parseV2(buffer, max, n);
  if (buffer[0] === 0x50) return parseV1(buffer, max, n);
  return NONE;
}
