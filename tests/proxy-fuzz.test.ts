// The PROXY protocol parser and encoder against fast-check: 10,000 random and mutated headers
// never make the parser throw or read past a header, a verdict never changes as more bytes
// arrive, and headers built from random fields parse back to those fields. Set FC_SEED to replay
// a failure. Hand-written cases: proxy-header.test.ts.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SocketAddress } from "node:net";
import process from "node:process";
import fc from "fast-check";
import { parseProxyHeader, type ProxyHeader } from "../src/_proxy_header.ts";
import { buildProxyHeader } from "../src/_proxy_build.ts";
import { formatIPv6, parseIPv6 } from "../src/_proxy_ip.ts";
import { isPlainV4, plainV4Header } from "../src/_proxy_v2.ts";
import { concat, latin1, SIG, text, tlv, v2 } from "./_proxy_vectors.ts";

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const runs = (numRuns: number) => ({ numRuns, ...(seed === undefined ? {} : { seed }) });

const port = fc.integer({ min: 0, max: 65535 });
const words = fc.array(fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8,
});
const ipv6Bytes = words.map((ws) => new Uint8Array(ws.flatMap((w) => [w >> 8, w & 0xff])));
/** IPv6 text in every form a sender may write: fast-check's, canonical, and long upper-case. */
const ipv6Text = fc.oneof(
  fc.ipV6(),
  ipv6Bytes.map((b) => formatIPv6(b, 0)),
  words.map((ws) => ws.map((w) => w.toString(16).toUpperCase().padStart(4, "0")).join(":")),
);
const utf8Length = (s: string) => text(s).length;
const unixPathArb = fc.oneof(
  fc.constant(""),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).filter((s) => !s.includes("\0") && utf8Length(s) <= 108),
  fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes("\0")).map((s) => "\0" + s),
);
const encodeTlv = (type: number, value: Uint8Array) => new Uint8Array(tlv(type, value));
const tlvArb = fc.oneof(
  fc.record({
    type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== 0x03 && t !== 0x05 && t !== 0x20),
    value: fc.uint8Array({ maxLength: 40 }),
  }),
  fc.record({ type: fc.constant(0x05), value: fc.uint8Array({ maxLength: 128 }) }),
  fc.tuple(
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 20 })), { maxLength: 4 }),
  ).map(([client, verify, subs]) => {
    const head = new Uint8Array(5);
    head[0] = client;
    new DataView(head.buffer).setUint32(1, verify);
    return { type: 0x20, value: concat(head, ...subs.map(([t, v]) => encodeTlv(t, v))) };
  }),
);
const tlvsArb = fc.array(tlvArb, { maxLength: 6 });
const command = fc.constantFrom("proxy" as const, "local" as const);
const endpoint = (hostname: fc.Arbitrary<string>) => fc.record({ hostname, port });
const v2Arb: fc.Arbitrary<ProxyHeader> = fc.oneof(
  fc.record({
    version: fc.constant(2 as const),
    command,
    transport: fc.constantFrom("tcp4" as const, "udp4" as const),
    source: endpoint(fc.ipV4()),
    destination: endpoint(fc.ipV4()),
    tlvs: tlvsArb,
  }),
  fc.record({
    version: fc.constant(2 as const),
    command,
    transport: fc.constantFrom("tcp6" as const, "udp6" as const),
    source: endpoint(ipv6Text),
    destination: endpoint(ipv6Text),
    tlvs: tlvsArb,
  }),
  fc.record({
    version: fc.constant(2 as const),
    command,
    transport: fc.constantFrom("unix" as const, "unixgram" as const),
    source: fc.record({ path: unixPathArb }),
    destination: fc.record({ path: unixPathArb }),
    tlvs: tlvsArb,
  }),
  fc.record({ version: fc.constant(2 as const), command, transport: fc.constant("unspec" as const), tlvs: tlvsArb }),
);
const v1Arb: fc.Arbitrary<ProxyHeader> = fc.oneof(
  fc.record({
    version: fc.constant(1 as const),
    command: fc.constant("proxy" as const),
    transport: fc.constant("tcp4" as const),
    source: endpoint(fc.ipV4()),
    destination: endpoint(fc.ipV4()),
    tlvs: fc.constant([]),
  }),
  fc.record({
    version: fc.constant(1 as const),
    command: fc.constant("proxy" as const),
    transport: fc.constant("tcp6" as const),
    source: endpoint(ipv6Text),
    destination: endpoint(ipv6Text),
    tlvs: fc.constant([]),
  }),
  fc.constant<ProxyHeader>({ version: 1, command: "local", transport: "unspec", tlvs: [] }),
);

/** What parsing a header built from `h` gives: LOCAL without addresses, IPv6 canonical (as plain objects). */
function expected(h: ProxyHeader): ProxyHeader {
  const tlvs = h.tlvs.map(({ type, value }) => ({ type, value }));
  if (h.command === "local") return { version: h.version, command: "local", transport: "unspec", tlvs };
  switch (h.transport) {
    case "unspec":
      return { ...h, tlvs };
    case "unix":
    case "unixgram":
      return { ...h, source: { ...h.source }, destination: { ...h.destination }, tlvs };
    default: {
      const v6 = h.transport === "tcp6" || h.transport === "udp6";
      const canonical = (hostname: string) => v6 ? formatIPv6(parseIPv6(hostname)!, 0) : hostname;
      return {
        ...h,
        source: { hostname: canonical(h.source.hostname), port: h.source.port },
        destination: { hostname: canonical(h.destination.hostname), port: h.destination.port },
        tlvs,
      };
    }
  }
}

const built = fc.tuple(fc.oneof(v2Arb, v1Arb), fc.boolean()).map(([h, crc]) =>
  buildProxyHeader(h, { crc32c: crc && h.version === 2 })
);
const mutation = fc.record({
  op: fc.constantFrom("flip", "set", "insert", "delete", "truncate"),
  at: fc.nat({ max: 300 }),
  byte: fc.integer({ min: 0, max: 255 }),
});
function mutate(bytes: Uint8Array, mutations: { op: string; at: number; byte: number }[]): Uint8Array {
  let out = [...bytes];
  for (const { op, at, byte } of mutations) {
    const i = out.length === 0 ? 0 : at % (out.length + (op === "insert" ? 1 : 0));
    if (op === "flip" && out.length > 0) out[i] = out[i]! ^ (1 << (byte % 8));
    else if (op === "set" && out.length > 0) out[i] = byte;
    else if (op === "insert") out.splice(i, 0, byte);
    else if (op === "delete") out.splice(i, 1);
    else if (op === "truncate") out = out.slice(0, i);
  }
  return new Uint8Array(out);
}
const V1_PIECES = [
  "PROXY",
  " ",
  "  ",
  "TCP4",
  "TCP6",
  "UNKNOWN",
  "1.2.3.4",
  "255.255.255.255",
  "01",
  "256",
  "::1",
  "::ffff:1.2.3.4",
]
  .concat(["1::2::3", "fe80::1%eth0", "0", "65535", "65536", "\r\n", "\r", "\n", "\0", "x", "\x80"]);
const v1ish = fc.array(fc.constantFrom(...V1_PIECES), { maxLength: 14 }).map((parts) =>
  latin1("PROXY " + parts.join(""))
);
const input = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((rest) => concat(new Uint8Array(SIG), rest)),
  // A good start, then random addresses and TLVs, of their length or of another.
  fc.tuple(
    fc.constantFrom(0x20, 0x21),
    fc.constantFrom(0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32),
    fc.uint8Array({ maxLength: 300 }),
    fc.option(fc.integer({ min: 0, max: 400 })),
  ).map(([versionCommand, family, rest, length]) => {
    const header = v2(versionCommand, family, [...rest]);
    if (length !== null) new DataView(header.buffer).setUint16(14, length);
    return header;
  }),
  fc.tuple(built, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms)),
  fc.tuple(built, fc.uint8Array({ maxLength: 30 })).map(([b, tail]) => concat(b, tail)),
  v1ish,
);

describe("fast-check", () => {
  test("10,000 random and mutated headers: a verdict, never a throw, never past the header", () => {
    fc.assert(
      fc.property(input, fc.nat(), fc.uint8Array({ maxLength: 8 }), (bytes, cut, garbage) => {
        const result = parseProxyHeader(bytes);
        assert.ok(["more", "header", "none", "invalid"].includes(result.kind));
        if (result.kind === "more") assert.ok(bytes.length < (bytes[0] === 0x50 ? 107 : 4096));
        if (result.kind === "header") {
          const { consumed } = result;
          assert.ok(consumed <= bytes.length);
          if (bytes[0] === 0x0d) assert.equal(consumed, 16 + ((bytes[14]! << 8) | bytes[15]!));
          else assert.ok(consumed <= 107 && bytes[consumed - 2] === 0x0d && bytes[consumed - 1] === 0x0a);
          // Nothing after the header counts: cut there, or followed by other bytes, the same.
          assert.deepEqual(parseProxyHeader(bytes.subarray(0, consumed)), result);
          assert.deepEqual(parseProxyHeader(concat(bytes.subarray(0, consumed), garbage)), result);
        }
        // A verdict never changes as more bytes arrive.
        const early = parseProxyHeader(bytes.subarray(0, cut % (bytes.length + 1)));
        if (early.kind !== "more") assert.deepEqual(result, early);
      }),
      runs(10_000),
    );
  });

  test("version 2 headers built from random fields parse back to them (2,000)", () => {
    fc.assert(
      fc.property(v2Arb, fc.boolean(), fc.uint8Array({ maxLength: 20 }), (h, crc, tail) => {
        const bytes = buildProxyHeader(h, { crc32c: crc });
        const result = parseProxyHeader(concat(bytes, tail));
        assert.equal(result.kind, "header", JSON.stringify(result));
        const { header, consumed } = result as { header: ProxyHeader; consumed: number };
        assert.equal(consumed, bytes.length);
        const want = expected(h);
        const tlvs = crc ? [...want.tlvs, { type: 0x03, value: bytes.slice(-4) }] : want.tlvs;
        assert.deepEqual(header, { ...want, tlvs });
        assert.deepEqual(buildProxyHeader(header), bytes, "and build(parse(x)) is x");
      }),
      runs(2_000),
    );
  });

  test("a plain IPv4 header kept unparsed makes the header the parser makes of it (2,000)", () => {
    const wordsOf = (b: Uint8Array) => [0, 1, 2, 3, 4, 5].map((i) => (b[16 + 2 * i]! << 8) | b[17 + 2 * i]!);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.constantFrom(0x11, 0x12),
        fc.nat(27),
        fc.nat(255),
        (addrs, family, at, byte) => {
          const bytes = new Uint8Array([...SIG, 0x21, family, 0, 12, ...addrs]);
          assert.ok(isPlainV4(bytes, 28) && !isPlainV4(bytes, 27));
          const parsed = parseProxyHeader(bytes) as { header: ProxyHeader };
          assert.deepEqual(plainV4Header(family, wordsOf(bytes)), parsed.header);
          // Any byte changed: still plain only where the parser reads the same kind of header.
          const changed = bytes.slice();
          changed[at] = byte;
          if (!isPlainV4(changed, 28)) return;
          const again = parseProxyHeader(changed) as { header: ProxyHeader };
          assert.deepEqual(plainV4Header(changed[13]!, wordsOf(changed)), again.header);
        },
      ),
      runs(2_000),
    );
  });

  test("version 1 headers built from random fields parse back to them (2,000)", () => {
    fc.assert(
      fc.property(v1Arb, fc.uint8Array({ maxLength: 20 }), (h, tail) => {
        const bytes = buildProxyHeader(h);
        const result = parseProxyHeader(concat(bytes, tail));
        assert.deepEqual(result, { kind: "header", header: expected(h), consumed: bytes.length });
      }),
      runs(2_000),
    );
  });

  test("IPv6 text: parsed back to its bytes, compressed as WHATWG URL and Node's net write it (2,000)", () => {
    const onNode = process.versions.bun === undefined && !("Deno" in globalThis);
    fc.assert(
      fc.property(ipv6Bytes, (bytes) => {
        const written = formatIPv6(bytes, 0);
        assert.deepEqual(parseIPv6(written), bytes);
        const w = (i: number) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
        const zeros = [0, 1, 2, 3, 4].every((i) => w(i) === 0);
        if (zeros && (w(5) === 0xffff || (w(5) === 0 && w(6) !== 0))) {
          assert.equal(written, `::${w(5) ? "ffff:" : ""}${bytes.subarray(12).join(".")}`);
        } else {
          assert.equal(written, new URL(`http://[${written}]/`).hostname.slice(1, -1));
        }
        if (onNode) assert.equal(new SocketAddress({ address: written, family: "ipv6" }).address, written);
      }),
      runs(2_000),
    );
  });
});
