// Typed readers of the TLVs of a PROXY v2 header: the registered types (ALPN, AUTHORITY,
// UNIQUE_ID, NETNS, CRC32C, SSL and its sub-TLVs) and the cloud vendors' (AWS VPC endpoint ID,
// Azure Private Link LinkID, Google Cloud PSC connection ID). Each returns `undefined` when the
// header has no such TLV, or (vendor types) not of the expected shape.

import type { ProxyTlv } from "./_proxy_header.ts";
import { findTlv, ProxySslSubtype, ProxyTlvType, splitTlvs } from "./_proxy_tlv.ts";

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

function findText(holder: { readonly tlvs: readonly ProxyTlv[] }, type: number): string | undefined {
  const value = findTlv(holder, type);
  return value === undefined ? undefined : utf8.decode(value);
}

/**
 * The ALPN TLV: the application protocol negotiated with the client, as in `"h2"`.
 *
 * @param header The header.
 * @returns The protocol (UTF-8 decoded), or `undefined`.
 * @example
 * ```ts
 * import { getAlpn } from "./_proxy_tlv_readers.ts";
 * const header = { tlvs: [{ type: 0x01, value: new TextEncoder().encode("h2") }] };
 * console.assert(getAlpn(header) === "h2");
 * ```
 */
export function getAlpn(header: { readonly tlvs: readonly ProxyTlv[] }): string | undefined {
  return findText(header, ProxyTlvType.ALPN);
}

/**
 * The AUTHORITY TLV: the host name the client asked for (TLS SNI).
 *
 * @param header The header.
 * @returns The host name, or `undefined`.
 * @example
 * ```ts
 * import { getAuthority } from "./_proxy_tlv_readers.ts";
 * const header = { tlvs: [{ type: 0x02, value: new TextEncoder().encode("example.com") }] };
 * console.assert(getAuthority(header) === "example.com");
 * ```
 */
export function getAuthority(header: { readonly tlvs: readonly ProxyTlv[] }): string | undefined {
  return findText(header, ProxyTlvType.AUTHORITY);
}

/**
 * The UNIQUE_ID TLV: the opaque ID (up to 128 bytes) the proxy gave the connection.
 *
 * @param header The header.
 * @returns The ID, or `undefined`.
 * @example
 * ```ts
 * import { getUniqueId } from "./_proxy_tlv_readers.ts";
 * const header = { tlvs: [{ type: 0x05, value: new Uint8Array([7, 7]) }] };
 * console.assert(getUniqueId(header)?.length === 2);
 * ```
 */
export function getUniqueId(header: { readonly tlvs: readonly ProxyTlv[] }): Uint8Array | undefined {
  return findTlv(header, ProxyTlvType.UNIQUE_ID);
}

/**
 * The NETNS TLV: the name of the network namespace the proxy accepted the connection in.
 *
 * @param header The header.
 * @returns The name, or `undefined`.
 * @example
 * ```ts
 * import { getNetns } from "./_proxy_tlv_readers.ts";
 * console.assert(getNetns({ tlvs: [{ type: 0x30, value: new TextEncoder().encode("blue") }] }) === "blue");
 * ```
 */
export function getNetns(header: { readonly tlvs: readonly ProxyTlv[] }): string | undefined {
  return findText(header, ProxyTlvType.NETNS);
}

/**
 * The CRC32C TLV's value. A header whose checksum did not match was refused by the parser.
 *
 * @param header The header.
 * @returns The checksum, or `undefined`.
 * @example
 * ```ts
 * import { getCrc32c } from "./_proxy_tlv_readers.ts";
 * console.assert(getCrc32c({ tlvs: [{ type: 0x03, value: new Uint8Array([0, 0, 1, 0]) }] }) === 256);
 * ```
 */
export function getCrc32c(header: { readonly tlvs: readonly ProxyTlv[] }): number | undefined {
  const value = findTlv(header, ProxyTlvType.CRC32C);
  return value?.length === 4 ? new DataView(value.buffer, value.byteOffset, 4).getUint32(0) : undefined;
}

/**
 * What the SSL TLV says about the client's TLS connection to the proxy.
 *
 * @example
 * ```ts
 * import { getSsl, type ProxySsl } from "./_proxy_tlv_readers.ts";
 * const ssl: ProxySsl | undefined = getSsl({ tlvs: [{ type: 0x20, value: new Uint8Array([0x03, 0, 0, 0, 0]) }] });
 * console.assert(ssl?.certInConnection === true && ssl.verified === true);
 * ```
 */
export interface ProxySsl {
  /** The client bit field: 0x01 TLS, 0x02 certificate on this connection, 0x04 in this session. */
  readonly client: number;
  /** The client connected over TLS (bit 0x01). */
  readonly ssl: boolean;
  /** The client presented a certificate on this connection (bit 0x02). */
  readonly certInConnection: boolean;
  /** The client presented a certificate at least once in this TLS session (bit 0x04). */
  readonly certInSession: boolean;
  /** The verify field: 0 if the client's certificate was verified (HAProxy also sends 0 when none was asked for). */
  readonly verify: number;
  /** The client presented a certificate (bit 0x02 or 0x04) and `verify` is 0. */
  readonly verified: boolean;
  /** TLS version (sub-TLV 0x21), as in `"TLSv1.3"`. */
  readonly version?: string;
  /** Common Name of the client certificate (sub-TLV 0x22). */
  readonly commonName?: string;
  /** Cipher (sub-TLV 0x23). */
  readonly cipher?: string;
  /** Signature algorithm of the frontend certificate (sub-TLV 0x24). */
  readonly signatureAlgorithm?: string;
  /** Key algorithm of the frontend certificate (sub-TLV 0x25). */
  readonly keyAlgorithm?: string;
  /** Every sub-TLV, in order, known or not. */
  readonly tlvs: readonly ProxyTlv[];
}

const SSL_FIELDS = [
  ["version", ProxySslSubtype.VERSION],
  ["commonName", ProxySslSubtype.CN],
  ["cipher", ProxySslSubtype.CIPHER],
  ["signatureAlgorithm", ProxySslSubtype.SIG_ALG],
  ["keyAlgorithm", ProxySslSubtype.KEY_ALG],
] as const;

/**
 * The SSL TLV, decoded: client flags, verify result and the sub-TLVs the spec names.
 *
 * @param header The header.
 * @returns The TLS details, or `undefined` if there is no SSL TLV.
 * @example
 * ```ts
 * import { getSsl } from "./_proxy_tlv_readers.ts";
 * const version = new TextEncoder().encode("TLSv1.3");
 * const value = new Uint8Array([0x01, 0, 0, 0, 0, 0x21, 0, version.length, ...version]);
 * const ssl = getSsl({ tlvs: [{ type: 0x20, value }] });
 * console.assert(ssl?.ssl === true && ssl.version === "TLSv1.3" && ssl.verified === false);
 * ```
 */
export function getSsl(header: { readonly tlvs: readonly ProxyTlv[] }): ProxySsl | undefined {
  const value = findTlv(header, ProxyTlvType.SSL);
  if (value === undefined || value.length < 5) return undefined;
  const tlvs = splitTlvs(value, 5, value.length, "the SSL TLV");
  if (typeof tlvs === "string") return undefined;
  const client = value[0]!;
  const verify = new DataView(value.buffer, value.byteOffset + 1, 4).getUint32(0);
  const sub = { tlvs };
  const named: { -readonly [K in keyof ProxySsl]?: ProxySsl[K] } = {};
  for (const [key, type] of SSL_FIELDS) {
    const text = findText(sub, type);
    if (text !== undefined) named[key] = text;
  }
  return {
    client,
    ssl: (client & 0x01) !== 0,
    certInConnection: (client & 0x02) !== 0,
    certInSession: (client & 0x04) !== 0,
    verify,
    verified: verify === 0 && (client & 0x06) !== 0,
    ...named,
    tlvs,
  };
}

/** The value after the subtype byte of the first TLV of `type` whose first byte is `subtype`. */
function findSubtype(
  header: { readonly tlvs: readonly ProxyTlv[] },
  type: number,
  subtype: number,
): Uint8Array | undefined {
  for (const tlv of header.tlvs) if (tlv.type === type && tlv.value[0] === subtype) return tlv.value.subarray(1);
  return undefined;
}

/**
 * AWS (PrivateLink through a Network Load Balancer): the VPC endpoint ID the client came
 * through, TLV 0xEA subtype 0x01.
 *
 * @param header The header.
 * @returns The ID, as in `"vpce-08d2bf15fac5001c9"`, or `undefined`.
 * @example
 * ```ts
 * import { getAwsVpceId } from "./_proxy_tlv_readers.ts";
 * const value = new Uint8Array([0x01, ...new TextEncoder().encode("vpce-0abc")]);
 * console.assert(getAwsVpceId({ tlvs: [{ type: 0xea, value }] }) === "vpce-0abc");
 * ```
 */
export function getAwsVpceId(header: { readonly tlvs: readonly ProxyTlv[] }): string | undefined {
  const value = findSubtype(header, ProxyTlvType.AWS, 0x01);
  return value === undefined ? undefined : utf8.decode(value);
}

/**
 * Azure (Private Link service): the LinkID of the private endpoint the client came through, TLV
 * 0xEE subtype 0x01, a 32-bit little-endian number.
 *
 * @param header The header.
 * @returns The LinkID, or `undefined` (also when the value is not 4 bytes).
 * @example
 * ```ts
 * import { getAzureLinkId } from "./_proxy_tlv_readers.ts";
 * const value = new Uint8Array([0x01, 0x01, 0x00, 0x00, 0x00]);
 * console.assert(getAzureLinkId({ tlvs: [{ type: 0xee, value }] }) === 1);
 * ```
 */
export function getAzureLinkId(header: { readonly tlvs: readonly ProxyTlv[] }): number | undefined {
  const value = findSubtype(header, ProxyTlvType.AZURE, 0x01);
  return value?.length === 4 ? new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true) : undefined;
}

/**
 * Google Cloud (Private Service Connect): the PSC connection ID, TLV 0xE0, a 64-bit big-endian
 * number.
 *
 * @param header The header.
 * @returns The connection ID, or `undefined` (also when the value is not 8 bytes).
 * @example
 * ```ts
 * import { getGcpPscConnectionId } from "./_proxy_tlv_readers.ts";
 * const value = new Uint8Array([0, 0, 0, 0, 0, 0, 0x01, 0x00]);
 * console.assert(getGcpPscConnectionId({ tlvs: [{ type: 0xe0, value }] }) === 256n);
 * ```
 */
export function getGcpPscConnectionId(header: { readonly tlvs: readonly ProxyTlv[] }): bigint | undefined {
  const value = findTlv(header, ProxyTlvType.GCP);
  return value?.length === 8 ? new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0) : undefined;
}
