// Hand-written PROXY headers for tests/proxy-header.test.ts: the helpers that write v2 headers
// and TLVs byte by byte (independently of buildProxyHeader), an independent bitwise CRC32C, and
// known-good headers from haproxy's doc/proxy-protocol.txt with what each one means.

import type { ProxyHeader } from "../src/_proxy_header.ts";

export const text = (s: string) => new TextEncoder().encode(s);
/** One byte per character, for lines that hold bytes over 0x7f. */
export const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
export const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** A v2 header written by hand: signature, version and command, family, length, then `body`. */
export const v2 = (versionCommand: number, family: number, body: number[]) =>
  new Uint8Array([...SIG, versionCommand, family, body.length >> 8, body.length & 0xff, ...body]);
export const tlv = (
  type: number,
  value: number[] | Uint8Array,
) => [type, value.length >> 8, value.length & 0xff, ...value];
export const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

/** An independent CRC32C, bit by bit, for the vectors. */
export function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

// 192.168.0.1:56324 -> 192.168.0.11:443, the spec's example, as v2 address blocks.
export const IPV4_BLOCK = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];
export const IPV6_BLOCK = [
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
  ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
  ...[0xdc, 0x04, 0x01, 0xbb],
];
export const unixPath = (path: string) => [...text(path), ...new Array(108 - text(path).length).fill(0)];

/** Valid headers, each followed by application bytes, with what they mean. */
export const VALID: { name: string; bytes: Uint8Array; header: ProxyHeader }[] = [
  {
    name: "v1 TCP4 (the spec's example)",
    bytes: text("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"),
    header: {
      version: 1,
      command: "proxy",
      transport: "tcp4",
      source: { hostname: "192.168.0.1", port: 56324 },
      destination: { hostname: "192.168.0.11", port: 443 },
      tlvs: [],
    },
  },
  {
    name: "v1 TCP6, written long and upper case, read canonical",
    bytes: text("PROXY TCP6 2001:DB8:0:0:0:0:0:1 0:0:0:0:0:0:0:1 0 65535\r\n"),
    header: {
      version: 1,
      command: "proxy",
      transport: "tcp6",
      source: { hostname: "2001:db8::1", port: 0 },
      destination: { hostname: "::1", port: 65535 },
      tlvs: [],
    },
  },
  {
    name: "v1 TCP6 with IPv4-mapped addresses (as HAProxy's inet_ntop writes them)",
    bytes: text("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:c000:201 1 2\r\n"),
    header: {
      version: 1,
      command: "proxy",
      transport: "tcp6",
      source: { hostname: "::ffff:192.0.2.7", port: 1 },
      destination: { hostname: "::ffff:192.0.2.1", port: 2 },
      tlvs: [],
    },
  },
  {
    name: "v1 TCP4 of the spec's longest form (56 bytes)",
    bytes: text("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
    header: {
      version: 1,
      command: "proxy",
      transport: "tcp4",
      source: { hostname: "255.255.255.255", port: 65535 },
      destination: { hostname: "255.255.255.255", port: 65535 },
      tlvs: [],
    },
  },
  {
    name: "v1 UNKNOWN, short form",
    bytes: text("PROXY UNKNOWN\r\nSSH-2.0"),
    header: { version: 1, command: "local", transport: "unspec", tlvs: [] },
  },
  {
    name: "v1 UNKNOWN, worst case of the spec (107 bytes, the rest ignored)",
    bytes: text(`PROXY UNKNOWN ${"ffff:".repeat(7)}ffff ${"ffff:".repeat(7)}ffff 65535 65535\r\n`),
    header: { version: 1, command: "local", transport: "unspec", tlvs: [] },
  },
  {
    name: "v2 PROXY TCP over IPv4",
    bytes: concat(v2(0x21, 0x11, IPV4_BLOCK), text("GET /")),
    header: {
      version: 2,
      command: "proxy",
      transport: "tcp4",
      source: { hostname: "192.168.0.1", port: 56324 },
      destination: { hostname: "192.168.0.11", port: 443 },
      tlvs: [],
    },
  },
  {
    name: "v2 PROXY UDP over IPv4",
    bytes: v2(0x21, 0x12, IPV4_BLOCK),
    header: {
      version: 2,
      command: "proxy",
      transport: "udp4",
      source: { hostname: "192.168.0.1", port: 56324 },
      destination: { hostname: "192.168.0.11", port: 443 },
      tlvs: [],
    },
  },
  {
    name: "v2 PROXY TCP over IPv6",
    bytes: concat(v2(0x21, 0x21, IPV6_BLOCK), new Uint8Array([0x16, 0x03, 0x01])),
    header: {
      version: 2,
      command: "proxy",
      transport: "tcp6",
      source: { hostname: "2001:db8::1", port: 56324 },
      destination: { hostname: "::1", port: 443 },
      tlvs: [],
    },
  },
  {
    name: "v2 PROXY UDP over IPv6",
    bytes: v2(0x21, 0x22, IPV6_BLOCK),
    header: {
      version: 2,
      command: "proxy",
      transport: "udp6",
      source: { hostname: "2001:db8::1", port: 56324 },
      destination: { hostname: "::1", port: 443 },
      tlvs: [],
    },
  },
  {
    name: "v2 PROXY Unix stream (an unnamed client, a path)",
    bytes: v2(0x21, 0x31, [...unixPath(""), ...unixPath("/run/app.sock")]),
    header: {
      version: 2,
      command: "proxy",
      transport: "unix",
      source: { path: "" },
      destination: { path: "/run/app.sock" },
      tlvs: [],
    },
  },
  {
    name: "v2 PROXY Unix datagram (an abstract name)",
    bytes: v2(0x21, 0x32, [...unixPath("\0client"), ...unixPath("/run/dgram.sock")]),
    header: {
      version: 2,
      command: "proxy",
      transport: "unixgram",
      source: { path: "\0client" },
      destination: { path: "/run/dgram.sock" },
      tlvs: [],
    },
  },
  {
    name: "v2 LOCAL (a health check)",
    bytes: concat(v2(0x20, 0x00, []), text("HEAD /")),
    header: { version: 2, command: "local", transport: "unspec", tlvs: [] },
  },
  {
    name: "v2 LOCAL with an address block, which is skipped",
    bytes: v2(0x20, 0x11, IPV4_BLOCK),
    header: { version: 2, command: "local", transport: "unspec", tlvs: [] },
  },
  {
    name: "v2 PROXY over AF_UNSPEC, with a TLV",
    bytes: v2(0x21, 0x00, tlv(0x04, [])),
    header: { version: 2, command: "proxy", transport: "unspec", tlvs: [{ type: 0x04, value: new Uint8Array() }] },
  },
  {
    name: "v2 PROXY with ALPN, AUTHORITY, NOOP and UNIQUE_ID TLVs",
    bytes: v2(0x21, 0x11, [
      ...IPV4_BLOCK,
      ...tlv(0x01, text("h2")),
      ...tlv(0x02, text("example.com")),
      ...tlv(0x04, [0, 0]),
      ...tlv(0x05, [9, 8, 7]),
    ]),
    header: {
      version: 2,
      command: "proxy",
      transport: "tcp4",
      source: { hostname: "192.168.0.1", port: 56324 },
      destination: { hostname: "192.168.0.11", port: 443 },
      tlvs: [
        { type: 0x01, value: text("h2") },
        { type: 0x02, value: text("example.com") },
        { type: 0x04, value: new Uint8Array([0, 0]) },
        { type: 0x05, value: new Uint8Array([9, 8, 7]) },
      ],
    },
  },
  {
    name: "v2 PROXY with a CRC32C computed elsewhere (0x0b4b0d85)",
    bytes: v2(0x21, 0x11, [127, 0, 0, 5, 127, 0, 0, 1, 0xd4, 0x31, 0x1f, 0x90, ...tlv(0x03, [0x0b, 0x4b, 0x0d, 0x85])]),
    header: {
      version: 2,
      command: "proxy",
      transport: "tcp4",
      source: { hostname: "127.0.0.5", port: 54321 },
      destination: { hostname: "127.0.0.1", port: 8080 },
      tlvs: [{ type: 0x03, value: new Uint8Array([0x0b, 0x4b, 0x0d, 0x85]) }],
    },
  },
];
