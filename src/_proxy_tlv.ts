// The TLVs of a PROXY v2 header: their types, their framing (each must end within the header,
// and the last at its end), and the checks the spec fixes (CRC32C verified when present,
// UNIQUE_ID at most 128 bytes, SSL with whole sub-TLVs). Typed readers: _proxy_tlv_readers.ts.

import { crc32c } from "./_crc32c.ts";
import type { ProxyTlv } from "./_proxy_header.ts";

/**
 * TLV types: those the spec registers, and the cloud vendors' (from its custom range
 * 0xE0-0xEF).
 *
 * @example
 * ```ts
 * import { ProxyTlvType } from "./_proxy_tlv.ts";
 * console.assert(ProxyTlvType.AUTHORITY === 0x02);
 * ```
 */
export const ProxyTlvType = {
  /** Application-Layer Protocol Negotiation: the protocol in use, as in `h2`. */
  ALPN: 0x01,
  /** The host name the client asked for (TLS SNI), UTF-8. */
  AUTHORITY: 0x02,
  /** CRC32C of the whole header, computed with this field zeroed; checked by the parser. */
  CRC32C: 0x03,
  /** Padding, to be ignored. */
  NOOP: 0x04,
  /** An opaque ID of up to 128 bytes that the proxy gave the connection. */
  UNIQUE_ID: 0x05,
  /** TLS details: client flags, verify result, and sub-TLVs ({@linkcode ProxySslSubtype}). */
  SSL: 0x20,
  /** The network namespace's name, US-ASCII. */
  NETNS: 0x30,
  /** Google Cloud Private Service Connect: the PSC connection ID, 8 bytes, big-endian. */
  GCP: 0xe0,
  /** AWS: subtype 0x01 then the VPC endpoint ID, ASCII. */
  AWS: 0xea,
  /** Azure: subtype 0x01 then the private endpoint's LinkID, 4 bytes, little-endian. */
  AZURE: 0xee,
} as const;

/**
 * The sub-TLV types inside an SSL TLV.
 *
 * @example
 * ```ts
 * import { ProxySslSubtype } from "./_proxy_tlv.ts";
 * console.assert(ProxySslSubtype.CN === 0x22);
 * ```
 */
export const ProxySslSubtype = {
  /** TLS version, as in `TLSv1.3`. */
  VERSION: 0x21,
  /** Common Name of the client certificate's subject. */
  CN: 0x22,
  /** Cipher, as in `ECDHE-RSA-AES128-GCM-SHA256`. */
  CIPHER: 0x23,
  /** Algorithm that signed the frontend's certificate, as in `RSA-SHA256`. */
  SIG_ALG: 0x24,
  /** Algorithm of the frontend certificate's key, as in `RSA2048`. */
  KEY_ALG: 0x25,
} as const;

const ZERO4 = new Uint8Array(4);
const hex = (byte: number) => `0x${byte.toString(16).padStart(2, "0")}`;

/**
 * Splits `bytes[start, end)` into TLVs (copying their values), checking only their framing.
 *
 * @param bytes The bytes.
 * @param start Where the first TLV starts.
 * @param end Where the last one must end.
 * @param what What ends at `end`, for the reason, as in `"the header"`.
 * @returns The TLVs, or the reason one runs past `end`.
 * @example
 * ```ts
 * import { splitTlvs } from "./_proxy_tlv.ts";
 * const tlvs = splitTlvs(new Uint8Array([0x04, 0x00, 0x00, 0x04, 0x00, 0x01, 0xff]), 0, 7, "the header");
 * console.assert(Array.isArray(tlvs) && tlvs.length === 2);
 * ```
 */
export function splitTlvs(bytes: Uint8Array, start: number, end: number, what: string): ProxyTlv[] | string {
  const tlvs: ProxyTlv[] = [];
  for (let at = start; at < end;) {
    if (end - at < 3) {
      return `TLV at byte ${at} has ${end - at} of its 3 bytes of type and length before the end of ${what}`;
    }
    const type = bytes[at]!;
    const length = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    if (at + 3 + length > end) return `TLV ${hex(type)} of ${length} bytes runs past the end of ${what}`;
    // A plain copy, even from a Node Buffer (whose slice() is a view).
    tlvs.push({ type, value: new Uint8Array(bytes.subarray(at + 3, at + 3 + length)) });
    at += 3 + length;
  }
  return tlvs;
}

/**
 * Parses the TLVs of a v2 header that starts at `bytes[0]` and ends at `end`, from `start`, and
 * verifies its CRC32C if it has one.
 *
 * @param bytes The header's bytes, from its first.
 * @param start Where the TLVs start (after the addresses).
 * @param end Where the header ends (16 + its length).
 * @returns The TLVs, or the reason the header is invalid.
 * @example
 * ```ts
 * import { parseTlvs } from "./_proxy_tlv.ts";
 * const tlvs = parseTlvs(new Uint8Array([0x02, 0x00, 0x01, 0x61]), 0, 4);
 * console.assert(Array.isArray(tlvs) && tlvs[0]!.type === 0x02);
 * console.assert(typeof parseTlvs(new Uint8Array([0x02, 0x00, 0x02, 0x61]), 0, 4) === "string");
 * ```
 */
export function parseTlvs(bytes: Uint8Array, start: number, end: number): ProxyTlv[] | string {
  const tlvs = splitTlvs(bytes, start, end, "the header");
  if (typeof tlvs === "string") return tlvs;
  let crcAt = -1;
  for (let i = 0, at = start + 3; i < tlvs.length; at += 3 + tlvs[i]!.value.length, i++) {
    const { type, value } = tlvs[i]!;
    if (type === ProxyTlvType.CRC32C) {
      if (value.length !== 4) return `CRC32C TLV has ${value.length} bytes instead of 4`;
      if (crcAt >= 0) return "Header has more than one CRC32C TLV";
      crcAt = at;
    } else if (type === ProxyTlvType.UNIQUE_ID && value.length > 128) {
      return `UNIQUE_ID TLV has ${value.length} bytes, more than 128`;
    } else if (type === ProxyTlvType.SSL) {
      if (value.length < 5) {
        return `SSL TLV has ${value.length} bytes, fewer than the 5 of its client and verify fields`;
      }
      const sub = splitTlvs(value, 5, value.length, "the SSL TLV");
      if (typeof sub === "string") return sub;
    }
  }
  if (crcAt < 0) return tlvs;
  const expected =
    ((bytes[crcAt]! << 24) | (bytes[crcAt + 1]! << 16) | (bytes[crcAt + 2]! << 8) | bytes[crcAt + 3]!) >>> 0;
  const actual = crc32c(bytes.subarray(crcAt + 4, end), crc32c(ZERO4, crc32c(bytes.subarray(0, crcAt))));
  return actual === expected ? tlvs : `CRC32C of the header is ${hex32(actual)}, not the ${hex32(expected)} it carries`;
}

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/**
 * The value of the first TLV of type `type`.
 *
 * @param holder A header, or what `getSsl` returns (for its sub-TLVs).
 * @param type The type.
 * @returns The value, or `undefined` if there is no such TLV.
 * @example
 * ```ts
 * import { findTlv } from "./_proxy_tlv.ts";
 * const header = { tlvs: [{ type: 0xf0, value: new Uint8Array([1]) }] };
 * console.assert(findTlv(header, 0xf0)?.[0] === 1);
 * ```
 */
export function findTlv(holder: { readonly tlvs: readonly ProxyTlv[] }, type: number): Uint8Array | undefined {
  for (const tlv of holder.tlvs) if (tlv.type === type) return tlv.value;
  return undefined;
}
