// Writes PROXY headers (v1 text, v2 binary with TLVs and an optional CRC32C): for clients and
// proxies written in JavaScript, and for tests that need a header without running HAProxy.

import { crc32c } from "./_crc32c.ts";
import type { ProxyHeader, ProxyNetEndpoint, ProxyTransport, ProxyUnixEndpoint } from "./_proxy_header.ts";
import { formatIPv6, parseIPv4, parseIPv6 } from "./_proxy_ip.ts";
import { ProxyTlvType } from "./_proxy_tlv.ts";

/**
 * Options of {@linkcode buildProxyHeader}.
 *
 * @example
 * ```ts
 * import { buildProxyHeader, type BuildProxyHeaderOptions } from "./_proxy_build.ts";
 * const options: BuildProxyHeaderOptions = { crc32c: true };
 * const bytes = buildProxyHeader({ version: 2, command: "local", transport: "unspec", tlvs: [] }, options);
 * console.assert(bytes.length === 16 + 7);
 * ```
 */
export interface BuildProxyHeaderOptions {
  /**
   * Append a CRC32C TLV holding the checksum of the whole v2 header (refused with v1, and with
   * a header that has a CRC32C TLV already).
   * @default {false}
   */
  crc32c?: boolean;
}

const FAMILIES: Record<ProxyTransport, number> = {
  unspec: 0x00,
  tcp4: 0x11,
  udp4: 0x12,
  tcp6: 0x21,
  udp6: 0x22,
  unix: 0x31,
  unixgram: 0x32,
};
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const encoder = new TextEncoder();

function bad(field: string, why: string, value: unknown): RangeError {
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  return new RangeError(`Cannot build a PROXY header as '${field}' ${why}: current value is ${shown}`);
}

function checkPort(field: string, port: unknown): number {
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    throw bad(field, "must be an integer from 0 to 65535", port);
  }
  return port as number;
}

/** The address's bytes for an IP transport, checked against its family. */
function ipBytes(field: string, transport: ProxyTransport, hostname: unknown): Uint8Array {
  const v4 = transport === "tcp4" || transport === "udp4";
  const bytes = typeof hostname !== "string" ? undefined : v4 ? parseIPv4(hostname) : parseIPv6(hostname);
  if (bytes === undefined) throw bad(field, `must be an ${v4 ? "IPv4" : "IPv6"} address for ${transport}`, hostname);
  return bytes;
}

function buildV1(header: ProxyHeader): Uint8Array {
  if (header.tlvs.length > 0) throw bad("tlvs", "must be empty for version 1, which has no TLVs", header.tlvs.length);
  if (header.command === "local") return encoder.encode("PROXY UNKNOWN\r\n");
  if (header.transport !== "tcp4" && header.transport !== "tcp6") {
    throw bad("transport", "must be tcp4 or tcp6 for a version 1 PROXY command", header.transport);
  }
  const text = (field: string, endpoint: ProxyNetEndpoint) => {
    const bytes = ipBytes(`${field}.hostname`, header.transport, endpoint.hostname);
    return header.transport === "tcp4" ? endpoint.hostname : formatIPv6(bytes, 0);
  };
  const { source, destination } = header;
  const line = `PROXY ${header.transport.toUpperCase()} ${text("source", source)} ${text("destination", destination)} ${
    checkPort("source.port", source.port)
  } ${checkPort("destination.port", destination.port)}\r\n`;
  return encoder.encode(line);
}

function unixBytes(field: string, endpoint: ProxyUnixEndpoint): Uint8Array {
  const bytes = typeof endpoint.path === "string" ? encoder.encode(endpoint.path) : undefined;
  if (bytes === undefined || bytes.length > 108) {
    throw bad(field, "must be a string of at most 108 bytes", endpoint.path);
  }
  const out = new Uint8Array(108);
  out.set(bytes);
  return out;
}

/** The address block of a v2 PROXY command. */
function addressBlock(header: ProxyHeader): Uint8Array {
  switch (header.transport) {
    case "unspec":
      return new Uint8Array(0);
    case "unix":
    case "unixgram": {
      const out = new Uint8Array(216);
      out.set(unixBytes("source.path", header.source));
      out.set(unixBytes("destination.path", header.destination), 108);
      return out;
    }
    default: {
      const src = ipBytes("source.hostname", header.transport, header.source.hostname);
      const dst = ipBytes("destination.hostname", header.transport, header.destination.hostname);
      const out = new Uint8Array(2 * src.length + 4);
      out.set(src);
      out.set(dst, src.length);
      const view = new DataView(out.buffer);
      view.setUint16(2 * src.length, checkPort("source.port", header.source.port));
      view.setUint16(2 * src.length + 2, checkPort("destination.port", header.destination.port));
      return out;
    }
  }
}

function buildV2(header: ProxyHeader, withCrc: boolean): Uint8Array {
  const local = header.command === "local";
  const addresses = local ? new Uint8Array(0) : addressBlock(header);
  const tlvs = [...header.tlvs];
  tlvs.forEach(({ type, value }, i) => {
    if (!Number.isInteger(type) || type < 0 || type > 255) throw bad(`tlvs[${i}].type`, "must be from 0 to 255", type);
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`Cannot build a PROXY header as 'tlvs[${i}].value' must be a Uint8Array`);
    }
    if (withCrc && type === ProxyTlvType.CRC32C) {
      throw bad(`tlvs[${i}].type`, "must not be CRC32C with crc32c: true", type);
    }
  });
  if (withCrc) tlvs.push({ type: ProxyTlvType.CRC32C, value: new Uint8Array(4) });
  const length = addresses.length + tlvs.reduce((sum, tlv) => sum + 3 + tlv.value.length, 0);
  if (length > 65535) throw bad("tlvs", "must fit with the addresses in 65535 bytes", length);
  const out = new Uint8Array(16 + length);
  const view = new DataView(out.buffer);
  out.set(SIGNATURE);
  out[12] = local ? 0x20 : 0x21;
  out[13] = local ? 0x00 : FAMILIES[header.transport];
  view.setUint16(14, length);
  out.set(addresses, 16);
  let at = 16 + addresses.length;
  for (const { type, value } of tlvs) {
    out[at] = type;
    view.setUint16(at + 1, value.length);
    out.set(value, at + 3);
    at += 3 + value.length;
  }
  if (withCrc) view.setUint32(out.length - 4, crc32c(out));
  return out;
}

/**
 * Writes a PROXY header. Version 1 writes `PROXY TCP4|TCP6 ...\r\n` for a PROXY command over
 * TCP, and `PROXY UNKNOWN\r\n` for a LOCAL one; version 2 writes the binary form, with the
 * header's TLVs in order. A LOCAL command carries no addresses (the spec: the sender sets the
 * family to UNSPEC), whatever `transport` says.
 *
 * @param header What to say: {@linkcode ProxyHeader}, as `parseProxyHeader` returns it.
 * @param options Whether to append a CRC32C TLV (version 2).
 * @returns The header's bytes.
 * @throws {RangeError} A field cannot be written: an address not of its transport's family, a
 *   port out of range, a Unix path over 108 bytes, TLVs with version 1 or over 65535 bytes; the
 *   message names the field and shows its value.
 * @throws {TypeError} A TLV's value is not a Uint8Array.
 * @example
 * ```ts
 * import { buildProxyHeader } from "./_proxy_build.ts";
 * import { parseProxyHeader } from "./_proxy_header.ts";
 * const bytes = buildProxyHeader({
 *   version: 2,
 *   command: "proxy",
 *   transport: "tcp6",
 *   source: { hostname: "2001:db8::7", port: 51000 },
 *   destination: { hostname: "2001:db8::1", port: 443 },
 *   tlvs: [{ type: 0x02, value: new TextEncoder().encode("example.com") }],
 * }, { crc32c: true });
 * const result = parseProxyHeader(bytes);
 * console.assert(result.kind === "header" && result.consumed === bytes.length);
 * ```
 */
export function buildProxyHeader(header: ProxyHeader, options?: BuildProxyHeaderOptions): Uint8Array {
  if (header.version !== 1 && header.version !== 2) throw bad("version", "must be 1 or 2", header.version);
  if (header.command !== "proxy" && header.command !== "local") {
    throw bad("command", 'must be "proxy" or "local"', header.command);
  }
  if (!Object.hasOwn(FAMILIES, header.transport)) {
    throw bad("transport", "must be tcp4, tcp6, udp4, udp6, unix, unixgram or unspec", header.transport);
  }
  if (header.version === 1) {
    if (options?.crc32c) throw bad("crc32c", "must not be set for version 1, which has no TLVs", true);
    return buildV1(header);
  }
  return buildV2(header, options?.crc32c === true);
}
