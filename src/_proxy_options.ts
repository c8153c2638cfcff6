// The PROXY protocol policy of a listener: the public options, their check and defaults, and
// the trusted sources as CIDR blocks matched against a peer's address. Pure: no sockets.
// IPv4 blocks are kept as IPv4-mapped IPv6 blocks (::ffff:a.b.c.d/96+n), so that one match
// serves IPv4 peers and IPv4-mapped IPv6 peers alike (a dual-stack socket's ::ffff:127.0.0.1).

import { parseIPv4, parseIPv6 } from "./_proxy_ip.ts";
import { show } from "./_config.ts";
import type { Addr } from "./types.ts";

/**
 * How a listener reads the PROXY protocol header (v1 or v2, detected per connection) that a load
 * balancer sends first on each connection.
 *
 * @example
 * ```ts
 * import type { ProxyProtocolOptions } from "./_proxy_options.ts";
 * const options: ProxyProtocolOptions = { trusted: ["10.0.0.0/8", "fd00::/8"], timeoutMs: 3000 };
 * ```
 */
export interface ProxyProtocolOptions {
  /**
   * Addresses and CIDR blocks (IPv4 or IPv6) of the proxies allowed to send a header. An IPv4
   * block also matches IPv4-mapped IPv6 peers (`::ffff:127.0.0.1`). A header from any other
   * address closes its connection. Peers of a Unix socket listener are always trusted: the
   * socket file's permissions say who may connect.
   *
   * Checking a peer costs a `getpeername()` per connection on Node.js and Bun (Deno asks every
   * connection's peer anyway). Blocks that cover every peer the listener can have (`0.0.0.0/0`
   * on an IPv4 listener, `::/0` on any) skip it: for a port that only the proxy can reach.
   * @default {["127.0.0.0/8", "::1"]} loopback only
   */
  trusted?: readonly string[];
  /**
   * Milliseconds for the whole header to arrive, from accept; a slower one closes its
   * connection. Caddy's default (go-proxyproto's is 10 s).
   * @default {5000}
   */
  timeoutMs?: number;
  /**
   * Close a connection from a trusted address that sends no header. `false` lets it through
   * with its own address, as does a connection from an untrusted address that sends none:
   * unsafe unless only the proxy can reach the port, since anyone else is then served too.
   * @default {true}
   */
  required?: boolean;
}

/**
 * One trusted block: 16 bytes of IPv6 address (IPv4 as ::ffff:a.b.c.d) and a prefix length.
 *
 * @example
 * ```ts
 * import { parseCidr, type Cidr } from "./_proxy_options.ts";
 * const block: Cidr | undefined = parseCidr("10.0.0.0/8");
 * console.assert(block?.prefix === 104);
 * ```
 */
export interface Cidr {
  /** The block's address, masked to its prefix. */
  readonly bytes: Uint8Array;
  /** Prefix length, from 0 to 128 (an IPv4 block's is 96 more than written). */
  readonly prefix: number;
  /** The block as written by the user. */
  readonly text: string;
}

/**
 * Checked options with defaults filled in.
 *
 * @example
 * ```ts
 * import { checkProxyProtocol, type NormalizedProxyProtocol } from "./_proxy_options.ts";
 * const options: NormalizedProxyProtocol | undefined = checkProxyProtocol(true);
 * console.assert(options?.timeoutMs === 5000 && options.required);
 * ```
 */
export interface NormalizedProxyProtocol {
  /** The trusted blocks. */
  readonly trusted: readonly Cidr[];
  /** Milliseconds for the whole header. */
  readonly timeoutMs: number;
  /** Whether a trusted peer must send a header. */
  readonly required: boolean;
}

/** Loopback, IPv4 and IPv6: where a proxy on the same machine connects from. */
const DEFAULT_TRUSTED = ["127.0.0.0/8", "::1"] as const;
const DEFAULT_TIMEOUT_MS = 5000;
/** setTimeout's longest delay. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const FIELDS = ["trusted", "timeoutMs", "required"];
const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;

function fail(kind: typeof TypeError | typeof RangeError, field: string, must: string, value: unknown): never {
  throw new kind(`Cannot listen as 'proxyProtocol${field}' ${must}: current value is ${show(value)}`);
}

/** The 16 bytes of an IPv4 or IPv6 address (IPv4 mapped), or undefined. */
function addressBytes(text: string): Uint8Array | undefined {
  if (!text.includes(":")) {
    const v4 = parseIPv4(text);
    if (v4 === undefined) return undefined;
    const out = new Uint8Array(16);
    out[10] = out[11] = 0xff;
    out.set(v4, 12);
    return out;
  }
  return parseIPv6(text);
}

/**
 * Parses an IP address or CIDR block, IPv4 or IPv6 (`"10.0.0.0/8"`, `"2001:db8::/32"`,
 * `"192.0.2.7"`). Bits past the prefix are ignored, as Go's `net.ParseCIDR` does.
 *
 * @param text The address or block.
 * @returns The block, or `undefined` if `text` is not one.
 * @example
 * ```ts
 * import { parseCidr } from "./_proxy_options.ts";
 * console.assert(parseCidr("::1")?.prefix === 128);
 * console.assert(parseCidr("10.0.0.0/33") === undefined && parseCidr("localhost") === undefined);
 * ```
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const bytes = addressBytes(address);
  if (bytes === undefined) return undefined;
  const v4 = !address.includes(":");
  const width = v4 ? 32 : 128;
  let prefix = width;
  if (slash >= 0) {
    const written = text.slice(slash + 1);
    if (!PREFIX.test(written) || Number(written) > width) return undefined;
    prefix = Number(written);
  }
  if (v4) prefix += 96;
  for (let bit = prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { bytes, prefix, text };
}

/**
 * Whether the IP address `hostname` lies in one of the blocks.
 *
 * @param hostname An IPv4 or IPv6 address, as a Conn's `remoteAddr.hostname` gives it.
 * @param blocks The trusted blocks.
 * @returns `true` if one contains it; `false` also for anything that is not an IP address.
 * @example
 * ```ts
 * import { inBlocks, parseCidr } from "./_proxy_options.ts";
 * const blocks = [parseCidr("127.0.0.0/8")!];
 * console.assert(inBlocks("127.0.0.5", blocks) && inBlocks("::ffff:127.0.0.1", blocks));
 * console.assert(!inBlocks("10.0.0.1", blocks) && !inBlocks("::1", blocks));
 * ```
 */
export function inBlocks(hostname: string, blocks: readonly Cidr[]): boolean {
  const bytes = addressBytes(hostname);
  if (bytes === undefined) return false;
  return blocks.some(({ bytes: block, prefix }) => {
    const whole = prefix >> 3;
    for (let i = 0; i < whole; i++) if (bytes[i] !== block[i]) return false;
    const rest = prefix & 7;
    if (rest === 0) return true;
    const mask = (0xff00 >> rest) & 0xff;
    return (bytes[whole]! & mask) === block[whole];
  });
}

/**
 * Whether every peer a listener on `addrs` can have lies in the blocks, so that no peer need be
 * asked its address (on Node.js and Bun a `getpeername()` per connection): an IPv4 listener's
 * peers with 0.0.0.0/0 or ::/0, an IPv6 listener's (IPv4-mapped ones too) with ::/0, a Unix
 * socket's always.
 *
 * @param blocks The trusted blocks.
 * @param addrs The addresses the listener listens on.
 * @returns `true` if no peer of such a listener can be untrusted.
 * @example
 * ```ts
 * import { parseCidr, trustsEveryPeer } from "./_proxy_options.ts";
 * const v4 = { transport: "tcp", hostname: "0.0.0.0", port: 80 } as const;
 * console.assert(trustsEveryPeer([parseCidr("0.0.0.0/0")!], [v4]));
 * console.assert(!trustsEveryPeer([parseCidr("0.0.0.0/0")!], [{ ...v4, hostname: "::" }]));
 * console.assert(!trustsEveryPeer([parseCidr("10.0.0.0/8")!], [v4]));
 * ```
 */
export function trustsEveryPeer(blocks: readonly Cidr[], addrs: readonly Addr[]): boolean {
  return addrs.every((addr) => {
    if (addr.transport === "unix") return true;
    if (addr.transport !== "tcp") return false;
    const [any, widest] = addr.hostname.includes(":") ? ["::", 0] : ["0.0.0.0", 96];
    return blocks.some((block) => block.prefix <= widest && inBlocks(any, [block]));
  });
}

function checkTrusted(value: unknown): Cidr[] {
  if (!Array.isArray(value)) fail(TypeError, ".trusted", "must be an array of addresses and CIDR blocks", value);
  return value.map((item: unknown, i: number) => {
    if (typeof item !== "string") fail(TypeError, `.trusted[${i}]`, "must be a string", item);
    const block = parseCidr(item);
    if (block === undefined) {
      fail(RangeError, `.trusted[${i}]`, "must be an IPv4 or IPv6 address or CIDR block such as 10.0.0.0/8", item);
    }
    return block;
  });
}

const DEFAULTS: NormalizedProxyProtocol = Object.freeze({
  trusted: Object.freeze(DEFAULT_TRUSTED.map((text) => parseCidr(text)!)),
  timeoutMs: DEFAULT_TIMEOUT_MS,
  required: true,
});

/**
 * Checks a `proxyProtocol` option and fills in its defaults.
 *
 * @param value `true` for the defaults, an object of {@linkcode ProxyProtocolOptions}, or
 *   `undefined` or `false` for no PROXY protocol.
 * @returns The normalized options, or `undefined` when the PROXY protocol is off.
 * @throws {TypeError} The value or one of its fields has the wrong type.
 * @throws {RangeError} A field is out of range, a block is not an address, or a field is unknown;
 *   the message names the field (`proxyProtocol.trusted[0]`) and shows the value.
 * @example
 * ```ts
 * import { checkProxyProtocol } from "./_proxy_options.ts";
 * const options = checkProxyProtocol({ trusted: ["10.0.0.0/8"], required: false });
 * console.assert(options?.trusted[0]?.text === "10.0.0.0/8" && options.timeoutMs === 5000);
 * console.assert(checkProxyProtocol(false) === undefined);
 * try {
 *   checkProxyProtocol({ timeoutMs: 0 });
 * } catch (err) {
 *   console.assert(err instanceof RangeError && err.message.includes("'proxyProtocol.timeoutMs'"));
 * }
 * ```
 */
export function checkProxyProtocol(value: unknown): NormalizedProxyProtocol | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULTS;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(TypeError, "", "must be true, false or an object of options", value);
  }
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!FIELDS.includes(key)) fail(RangeError, `.${key}`, `is not an option (${FIELDS.join(", ")})`, options[key]);
  }
  const { trusted, timeoutMs, required } = options;
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== "number") fail(TypeError, ".timeoutMs", "must be a number", timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      fail(RangeError, ".timeoutMs", `must be an integer from 1 to ${MAX_TIMEOUT_MS}`, timeoutMs);
    }
  }
  if (required !== undefined && typeof required !== "boolean") {
    fail(TypeError, ".required", "must be a boolean", required);
  }
  return Object.freeze({
    trusted: trusted === undefined ? DEFAULTS.trusted : Object.freeze(checkTrusted(trusted)),
    timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS,
    required: required ?? true,
  });
}
