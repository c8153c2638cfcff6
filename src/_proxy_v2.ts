// Version 2 of the PROXY protocol: the 12-byte signature, version and command, family and
// protocol, a length, then the addresses (12 bytes for IPv4, 36 for IPv6, 216 for Unix) and TLVs
// to exactly that length. Each field is refused as soon as it arrives, and nothing past the
// declared length is read. TLVs, and the CRC32C of the header, are checked by _proxy_tlv.ts. The
// commonest header (IPv4, no TLVs) can be told and kept without parsing: isPlainV4, plainV4Header.

import type {
  ProxyHeader,
  ProxyNetHeader,
  ProxyParseResult,
  ProxyTlv,
  ProxyTransport,
  ProxyUnixEndpoint,
} from "./_proxy_header.ts";
import { formatIPv4, formatIPv6 } from "./_proxy_ip.ts";
import { parseTlvs } from "./_proxy_tlv.ts";

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const ADDRESS_LENGTHS: Record<number, number> = {
  0x00: 0,
  0x11: 12,
  0x12: 12,
  0x21: 36,
  0x22: 36,
  0x31: 216,
  0x32: 216,
};
const TRANSPORTS: Record<number, ProxyTransport> = {
  0x11: "tcp4",
  0x12: "udp4",
  0x21: "tcp6",
  0x22: "udp6",
  0x31: "unix",
  0x32: "unixgram",
};
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

const MORE: ProxyParseResult = Object.freeze({ kind: "more" });
const NONE: ProxyParseResult = Object.freeze({ kind: "none" });
const invalid = (reason: string): ProxyParseResult => ({ kind: "invalid", reason });
const hex = (byte: number) => `0x${byte.toString(16).padStart(2, "0")}`;

/**
 * Parses a version 2 header at the start of `bytes` (whose first byte is CR), for
 * `parseProxyHeader`.
 *
 * @param bytes The bytes received so far (or a buffer that holds them first).
 * @param max The longest header accepted (16 + its length).
 * @param n How many of `bytes` have been received: nothing past them is read.
 * @returns What `parseProxyHeader` returns.
 * @example
 * ```ts
 * import { parseV2 } from "./_proxy_v2.ts";
 * const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
 * const local = new Uint8Array([...signature, 0x20, 0x00, 0x00, 0x00]);
 * const result = parseV2(local, 4096);
 * console.assert(result.kind === "header" && result.header.command === "local" && result.consumed === 16);
 * console.assert(parseV2(local.subarray(0, 15), 4096).kind === "more");
 * ```
 */
export function parseV2(bytes: Uint8Array, max: number, n: number = bytes.length): ProxyParseResult {
  for (let i = 1; i < 12 && i < n; i++) if (bytes[i] !== SIGNATURE[i]) return NONE;
  if (n < 13) return MORE;
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`Version 2 signature is followed by version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`Version 2 command ${command} is neither LOCAL (0) nor PROXY (1)`);
  if (n < 14) return MORE;
  const family = bytes[13]!;
  const addressLength = ADDRESS_LENGTHS[family];
  if (addressLength === undefined) {
    return invalid(`Version 2 address family and protocol ${hex(family)} is not one the spec defines`);
  }
  if (n < 16) return MORE;
  const length = (bytes[14]! << 8) | bytes[15]!;
  const total = 16 + length;
  if (total > max) return invalid(`Version 2 header of ${total} bytes is longer than the limit of ${max}`);
  if (length < addressLength) {
    return invalid(`Version 2 address block of ${length} bytes is shorter than the ${addressLength} its family needs`);
  }
  if (n < total) return MORE;
  const tlvs = parseTlvs(bytes, 16 + addressLength, total);
  if (typeof tlvs === "string") return invalid(tlvs);
  return { kind: "header", header: v2Header(bytes, command, family, tlvs), consumed: total };
}

/** How long the plain header of {@linkcode isPlainV4} is. */
export const PLAIN_V4_LENGTH = 28;

/**
 * Whether `bytes` start with the version 2 header most balancers send: the PROXY command over
 * IPv4 (TCP or UDP), no TLVs, 28 bytes, valid as they stand. A listener can keep its family (byte
 * 13) and its 12 address bytes and make the header of them only when asked (plainV4Header): the
 * same header parseV2 gives, by parseV2.
 *
 * @param bytes The bytes received.
 * @param n How many of `bytes` have been received.
 * @returns Whether the first 28 of them are such a header.
 * @example
 * ```ts
 * import { isPlainV4 } from "./_proxy_v2.ts";
 * const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
 * const header = new Uint8Array([...signature, 0x21, 0x11, 0, 12, 203, 0, 113, 7, 192, 0, 2, 1, 0xc7, 0x38, 1, 0xbb]);
 * console.assert(isPlainV4(header, 28) && !isPlainV4(header, 27));
 * ```
 */
export function isPlainV4(bytes: Uint8Array, n: number): boolean {
  if (n < PLAIN_V4_LENGTH || bytes[12] !== 0x21 || bytes[14] !== 0 || bytes[15] !== 12) return false;
  if (bytes[13] !== 0x11 && bytes[13] !== 0x12) return false;
  for (let i = 0; i < 12; i++) if (bytes[i] !== SIGNATURE[i]) return false;
  return true;
}

/** A plain header's bytes, rebuilt by plainV4Header: the fixed ones written once. */
const plain = new Uint8Array([...SIGNATURE, 0x21, 0x11, 0, 12, ...new Array<number>(12).fill(0)]);

/**
 * The header of {@linkcode isPlainV4}'s bytes, from what a listener kept of them: parsed as
 * parseV2 parses them (it does).
 *
 * @param family Byte 13: 0x11 (TCP) or 0x12 (UDP).
 * @param words Bytes 16 to 27 as six big-endian 16-bit words: source and destination address,
 *   source and destination port.
 * @returns The header.
 * @example
 * ```ts
 * import { plainV4Header } from "./_proxy_v2.ts";
 * const header = plainV4Header(0x11, [0xcb00, 0x7107, 0xc000, 0x0201, 51000, 443]);
 * console.assert(header.transport === "tcp4" && header.source.hostname === "203.0.113.7");
 * console.assert(header.destination.port === 443);
 * ```
 */
export function plainV4Header(family: number, words: readonly number[]): ProxyNetHeader {
  plain[13] = family;
  for (let i = 0; i < 6; i++) {
    plain[16 + 2 * i] = words[i]! >> 8;
    plain[17 + 2 * i] = words[i]! & 0xff;
  }
  return (parseV2(plain, PLAIN_V4_LENGTH) as { header: ProxyNetHeader }).header;
}

function v2Header(bytes: Uint8Array, command: number, family: number, tlvs: ProxyTlv[]): ProxyHeader {
  const transport = TRANSPORTS[family];
  if (command === 0 || transport === undefined) {
    return { version: 2, command: command === 0 ? "local" : "proxy", transport: "unspec", tlvs };
  }
  if (transport === "unix" || transport === "unixgram") {
    return {
      version: 2,
      command: "proxy",
      transport,
      source: unixPath(bytes, 16),
      destination: unixPath(bytes, 124),
      tlvs,
    };
  }
  const v4 = family >> 4 === 1;
  const ports = v4 ? 24 : 48;
  return {
    version: 2,
    command: "proxy",
    transport,
    source: {
      hostname: v4 ? formatIPv4(bytes, 16) : formatIPv6(bytes, 16),
      port: (bytes[ports]! << 8) | bytes[ports + 1]!,
    },
    destination: {
      hostname: v4 ? formatIPv4(bytes, 20) : formatIPv6(bytes, 32),
      port: (bytes[ports + 2]! << 8) | bytes[ports + 3]!,
    },
    tlvs,
  };
}

/** A 108-byte sun_path: up to its first NUL, or for an abstract name ("\0name"), without the NULs that pad it. */
function unixPath(bytes: Uint8Array, offset: number): ProxyUnixEndpoint {
  let end = offset + 108;
  if (bytes[offset] === 0) {
    while (end > offset + 1 && bytes[end - 1] === 0) end--;
    if (end === offset + 1) return { path: "" };
  } else {
    const nul = bytes.subarray(offset, end).indexOf(0);
    if (nul >= 0) end = offset + nul;
  }
  return { path: utf8.decode(bytes.subarray(offset, end)) };
}
