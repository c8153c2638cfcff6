// The PROXY protocol parser (v1 and v2), its TLV readers and its encoder, without sockets:
// known-good headers from haproxy's doc/proxy-protocol.txt written out byte by byte, every
// malformed form as its own case, byte-by-byte feeding, and the "none" verdict at the first byte
// that differs from both signatures. Random headers: proxy-fuzz.test.ts.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { parseProxyHeader, type ProxyHeader } from "../src/_proxy_header.ts";
import { buildProxyHeader } from "../src/_proxy_build.ts";
import { crc32c } from "../src/_crc32c.ts";
import { concat, crc32cBitwise, IPV4_BLOCK, IPV6_BLOCK, latin1, SIG, text, tlv, v2, VALID } from "./_proxy_vectors.ts";
import {
  getAlpn,
  getAuthority,
  getAwsVpceId,
  getAzureLinkId,
  getCrc32c,
  getGcpPscConnectionId,
  getNetns,
  getSsl,
  getUniqueId,
} from "../src/_proxy_tlv_readers.ts";

function parsed(bytes: Uint8Array): { header: ProxyHeader; consumed: number } {
  const result = parseProxyHeader(bytes);
  assert.equal(result.kind, "header", JSON.stringify(result));
  return result as { header: ProxyHeader; consumed: number };
}

function refused(bytes: Uint8Array, reason: RegExp, options?: { maxLength: number }): void {
  const result = parseProxyHeader(bytes, options);
  assert.equal(result.kind, "invalid", JSON.stringify(result));
  const { reason: said } = result as { reason: string };
  assert.match(said, reason);
  assert.match(said, /^[A-Z][^\n]*[^.]$/, "a short sentence, sentence case, no trailing period");
}

describe("known-good headers", () => {
  for (const { name, bytes, header } of VALID) {
    test(name, () => {
      const result = parsed(bytes);
      assert.deepEqual(result.header, header);
      const end = header.version === 1 ? bytes.indexOf(0x0a) + 1 : 16 + ((bytes[14]! << 8) | bytes[15]!);
      assert.equal(result.consumed, end, "consumed is the header, and the bytes after it are the application's");
    });
  }

  test("v1 TCP6 of the spec's longest form (104 bytes)", () => {
    const address = `${"ffff:".repeat(7)}ffff`;
    const line = `PROXY TCP6 ${address} ${address} 65535 65535\r\n`;
    assert.equal(line.length, 104);
    assert.equal(parsed(text(line)).consumed, 104);
  });

  test('CRC32C: the check values of RFC 3720 B.4 and of "123456789"', () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(text("123456789")), 0xe3069283);
  });

  test("a header of the maximum length (16 + 65535) with maxLength 65551", () => {
    const bytes = v2(0x21, 0x00, tlv(0x04, new Uint8Array(65532)));
    assert.equal(bytes.length, 65551);
    const result = parseProxyHeader(bytes, { maxLength: 65551 });
    assert.equal(result.kind === "header" && result.consumed, 65551);
  });

  test("TLV values are plain copies, even from a Node Buffer", () => {
    const input = Buffer.from(v2(0x21, 0x00, tlv(0x05, [1, 2, 3])));
    const { header } = parsed(input);
    input.fill(0);
    assert.deepEqual(header.tlvs, [{ type: 0x05, value: new Uint8Array([1, 2, 3]) }]);
  });
});

describe("TLV readers", () => {
  const ssl = [
    0x07,
    0,
    0,
    0,
    0,
    ...tlv(0x21, text("TLSv1.3")),
    ...tlv(0x22, text("client.example")),
    ...tlv(0x23, text("TLS_AES_128_GCM_SHA256")),
    ...tlv(0x24, text("RSA-SHA256")),
    ...tlv(0x25, text("RSA2048")),
    ...tlv(0x28, [1]),
  ];
  const bytes = v2(0x21, 0x21, [
    ...IPV6_BLOCK,
    ...tlv(0x01, text("http/1.1")),
    ...tlv(0x02, text("example.com")),
    ...tlv(0x05, [0xde, 0xad]),
    ...tlv(0x20, ssl),
    ...tlv(0x30, text("blue")),
    ...tlv(0xea, [0x01, ...text("vpce-08d2bf15fac5001c9")]),
    ...tlv(0xee, [0x01, 0x78, 0x56, 0x34, 0x12]),
    ...tlv(0xe0, [0, 0, 0, 0x01, 0, 0, 0, 0x02]),
  ]);
  const { header } = parsed(bytes);

  test("ALPN, AUTHORITY, UNIQUE_ID and NETNS", () => {
    assert.equal(getAlpn(header), "http/1.1");
    assert.equal(getAuthority(header), "example.com");
    assert.deepEqual(getUniqueId(header), new Uint8Array([0xde, 0xad]));
    assert.equal(getNetns(header), "blue");
  });

  test("SSL: client bits, verify and the named sub-TLVs", () => {
    assert.deepEqual(getSsl(header), {
      client: 7,
      ssl: true,
      certInConnection: true,
      certInSession: true,
      verify: 0,
      verified: true,
      version: "TLSv1.3",
      commonName: "client.example",
      cipher: "TLS_AES_128_GCM_SHA256",
      signatureAlgorithm: "RSA-SHA256",
      keyAlgorithm: "RSA2048",
      tlvs: [
        { type: 0x21, value: text("TLSv1.3") },
        { type: 0x22, value: text("client.example") },
        { type: 0x23, value: text("TLS_AES_128_GCM_SHA256") },
        { type: 0x24, value: text("RSA-SHA256") },
        { type: 0x25, value: text("RSA2048") },
        { type: 0x28, value: new Uint8Array([1]) },
      ],
    });
    const noCert = getSsl({ tlvs: [{ type: 0x20, value: new Uint8Array([0x01, 0, 0, 0, 0]) }] });
    assert.equal(noCert?.verified, false, "verify 0 without a client certificate is not verified");
    assert.equal(noCert?.version, undefined);
  });

  test("AWS VPC endpoint ID, Azure LinkID (little-endian), GCP PSC connection ID (big-endian)", () => {
    assert.equal(getAwsVpceId(header), "vpce-08d2bf15fac5001c9");
    assert.equal(getAzureLinkId(header), 0x12345678);
    assert.equal(getGcpPscConnectionId(header), 0x0000000100000002n);
  });

  test("absent, or not of the vendor's shape: undefined", () => {
    const other =
      parsed(v2(0x21, 0x00, [...tlv(0xea, [0x02, 0x41]), ...tlv(0xee, [0x01, 1, 2]), ...tlv(0xe0, [1])])).header;
    for (const read of [getAlpn, getAuthority, getUniqueId, getNetns, getSsl, getCrc32c]) {
      assert.equal(read(other), undefined);
    }
    assert.equal(getAwsVpceId(other), undefined);
    assert.equal(getAzureLinkId(other), undefined);
    assert.equal(getGcpPscConnectionId(other), undefined);
  });

  test("CRC32C: the value carried", () => {
    assert.equal(getCrc32c(parsed(VALID.find((v) => v.name.includes("CRC32C"))!.bytes).header), 0x0b4b0d85);
  });
});

describe("malformed version 1 lines are refused", () => {
  const cases: [string, string, RegExp][] = [
    ["PROXY without a space", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", /no space after PROXY/],
    ["PROXY alone", "PROXY\r\n", /ends after PROXY/],
    ["PROXY and a space alone", "PROXY \r\n", /space before its CRLF/],
    ["an unknown protocol", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", /protocol "TCP5" is not TCP4, TCP6 or UNKNOWN/],
    ["a lower-case protocol", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", /protocol "tcp4"/],
    ["UDP4, which v1 does not have", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", /protocol "UDP4"/],
    ["UNKNOWN run into more letters", "PROXY UNKNOWNX\r\n", /protocol "UNKNOWNX"/],
    ["two spaces after PROXY", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", /two spaces in a row/],
    ["two spaces between addresses", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", /two spaces in a row/],
    ["a space before CRLF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", /space after its destination port/],
    ["a tab for a space", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", /not printable US-ASCII: 0x09/],
    ["no destination port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", /ends before its destination port/],
    ["no ports", "PROXY TCP4 1.2.3.4 5.6.7.8\r\n", /ends before its source port/],
    ["no destination address", "PROXY TCP6 ::1\r\n", /ends before its destination address/],
    ["no address at all", "PROXY TCP4\r\n", /ends before its source address/],
    ["a field after the destination port", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", /space after its destination port/],
    [
      "an IPv4 octet with a leading zero",
      "PROXY TCP4 192.168.01.1 5.6.7.8 1 2\r\n",
      /source address "192.168.01.1" is not an IPv4/,
    ],
    ["an IPv4 octet over 255", "PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", /destination address "5.6.7.256"/],
    ["an IPv4 address of three numbers", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", /source address "1.2.3"/],
    ["an IPv4 address with a sign", "PROXY TCP4 +1.2.3.4 5.6.7.8 1 2\r\n", /source address/],
    ["an IPv6 address in a TCP4 line", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", /source address "::1" is not an IPv4/],
    ["an IPv4 address in a TCP6 line", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", /source address "1.2.3.4" is not an IPv6/],
    ["an IPv6 address with two ::", "PROXY TCP6 1::2::3 ::1 1 2\r\n", /is not an IPv6/],
    ["an IPv6 address with a zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", /is not an IPv6/],
    ["an IPv6 group of five digits", "PROXY TCP6 2001:0db80::1 ::1 1 2\r\n", /is not an IPv6/],
    ["an IPv6 address of nine groups", "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", /is not an IPv6/],
    ["an IPv6 address of seven groups", "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", /is not an IPv6/],
    ["an IPv6 address in brackets", "PROXY TCP6 [::1] ::1 1 2\r\n", /is not an IPv6/],
    ["a port with a leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", /source port "080" is not a port/],
    ["a port over 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", /destination port "65536"/],
    ["a negative port", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", /source port "-1"/],
    ["a port with a sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", /source port "\+1"/],
    ["a port in hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n", /source port "0x50"/],
    ["LF alone", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", /LF alone/],
    ["CR alone", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", /CR that is not followed by LF/],
    ["CR CR LF", "PROXY UNKNOWN\r\r\n", /CR that is not followed by LF/],
    ["a NUL byte", "PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n", /not printable US-ASCII: 0x00/],
    ["a byte over 0x7e", "PROXY UNKNOWN \x80\r\n", /not printable US-ASCII: 0x80/],
    ["a LF in the ignored part of UNKNOWN", "PROXY UNKNOWN a\nb\r\n", /LF alone/],
    ["no CRLF in the first 107 bytes", `PROXY UNKNOWN ${"x".repeat(200)}`, /no CRLF in its first 107 bytes/],
    ["CRLF one byte too late (108 bytes)", `PROXY UNKNOWN ${"x".repeat(92)}\r\n`, /no CRLF in its first 107 bytes/],
  ];
  for (const [name, line, reason] of cases) test(name, () => refused(latin1(line), reason));

  test("a line longer than maxLength", () => {
    refused(text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), /no CRLF in its first 20 bytes/, { maxLength: 20 });
  });
});

describe("malformed version 2 headers are refused", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["version 1 in the binary form", v2(0x11, 0x11, IPV4_BLOCK), /followed by version 1$/],
    ["version 3", v2(0x31, 0x11, IPV4_BLOCK), /followed by version 3$/],
    ["version 0 and command 0", v2(0x00, 0x00, []), /followed by version 0$/],
    ["command 2", v2(0x22, 0x11, IPV4_BLOCK), /command 2 is neither LOCAL \(0\) nor PROXY \(1\)/],
    ["command 15", v2(0x2f, 0x11, IPV4_BLOCK), /command 15/],
    ["address family 4", v2(0x21, 0x41, IPV4_BLOCK), /family and protocol 0x41 is not one the spec defines/],
    ["transport protocol 3", v2(0x21, 0x13, IPV4_BLOCK), /0x13/],
    ["AF_INET with UNSPEC protocol", v2(0x21, 0x10, IPV4_BLOCK), /0x10/],
    ["AF_UNSPEC with STREAM protocol", v2(0x21, 0x01, []), /0x01/],
    ["an unknown family in a LOCAL command", v2(0x20, 0xff, []), /0xff/],
    ["TCP over IPv4 with 11 address bytes", v2(0x21, 0x11, IPV4_BLOCK.slice(0, 11)), /11 bytes is shorter than the 12/],
    ["TCP over IPv6 with 35 address bytes", v2(0x21, 0x21, IPV6_BLOCK.slice(0, 35)), /35 bytes is shorter than the 36/],
    ["Unix with 215 address bytes", v2(0x21, 0x31, new Array(215).fill(0)), /215 bytes is shorter than the 216/],
    ["a LOCAL command with a short address block", v2(0x20, 0x21, IPV4_BLOCK), /shorter than the 36/],
    ["one byte after the addresses", v2(0x21, 0x11, [...IPV4_BLOCK, 0x04]), /TLV at byte 28 has 1 of its 3 bytes/],
    ["two bytes after the addresses", v2(0x21, 0x11, [...IPV4_BLOCK, 0x04, 0x00]), /has 2 of its 3 bytes/],
    [
      "a TLV running past the end",
      v2(0x21, 0x11, [...IPV4_BLOCK, 0x02, 0x00, 0x05, 0x61]),
      /TLV 0x02 of 5 bytes runs past/,
    ],
    [
      "a TLV after a good one running past the end",
      v2(0x21, 0x00, [...tlv(0x04, []), 0x05, 0xff, 0xff]),
      /0x05 of 65535/,
    ],
    ["a CRC32C of 3 bytes", v2(0x21, 0x00, tlv(0x03, [0, 0, 0])), /CRC32C TLV has 3 bytes instead of 4/],
    [
      "two CRC32C TLVs",
      v2(0x21, 0x00, [...tlv(0x03, [0, 0, 0, 0]), ...tlv(0x03, [0, 0, 0, 0])]),
      /more than one CRC32C/,
    ],
    [
      "a UNIQUE_ID of 129 bytes",
      v2(0x21, 0x00, tlv(0x05, new Array(129).fill(1))),
      /UNIQUE_ID TLV has 129 bytes, more than 128/,
    ],
    ["an SSL TLV of 4 bytes", v2(0x21, 0x00, tlv(0x20, [1, 0, 0, 0])), /SSL TLV has 4 bytes, fewer than the 5/],
    [
      "an SSL sub-TLV running past the end",
      v2(0x21, 0x00, tlv(0x20, [1, 0, 0, 0, 0, 0x21, 0, 9, 0x54])),
      /0x21 of 9 bytes runs past the end of the SSL TLV/,
    ],
  ];
  for (const [name, bytes, reason] of cases) test(name, () => refused(bytes, reason));

  test("a CRC32C that does not match (one address bit flipped)", () => {
    const good = VALID.find((v) => v.name.includes("CRC32C"))!.bytes;
    const bad = good.slice();
    bad[19] = bad[19]! ^ 0x01;
    refused(bad, /CRC32C of the header is 0x[0-9a-f]{8}, not the 0x0b4b0d85 it carries/);
  });

  test("a CRC32C computed without zeroing its field", () => {
    const bytes = v2(0x21, 0x00, tlv(0x03, [0, 0, 0, 0]));
    const crc = crc32cBitwise(bytes) ^ 1;
    new DataView(bytes.buffer).setUint32(bytes.length - 4, crc);
    refused(bytes, /CRC32C of the header/);
  });

  test("a declared length over maxLength, refused from its 16 bytes", () => {
    const head = new Uint8Array([...SIG, 0x21, 0x11, 0x10, 0x00]);
    refused(head, /header of 4112 bytes is longer than the limit of 4096/);
    refused(head.subarray(0, 16), /longer than the limit of 100/, { maxLength: 100 });
    refused(v2(0x21, 0x31, new Array(216).fill(0)), /232 bytes is longer than the limit of 200/, { maxLength: 200 });
  });

  test("maxLength that is not an integer from 16 to 65551 is a RangeError", () => {
    for (const maxLength of [15, 65552, 1.5, NaN, -1, Infinity]) {
      assert.throws(() => parseProxyHeader(new Uint8Array(), { maxLength }), (err: unknown) => {
        assert.ok(err instanceof RangeError);
        assert.match(
          err.message,
          /^Cannot parse a PROXY header as 'maxLength' must be an integer from 16 to 65551: current value is /,
        );
        return true;
      });
    }
  });
});

describe("byte by byte", () => {
  for (const { name, bytes } of VALID) {
    test(`every split of ${name} gives "more" until the header is whole, then the same header`, () => {
      const whole = parseProxyHeader(bytes);
      assert.equal(whole.kind, "header");
      const { consumed } = whole as { consumed: number };
      for (let k = 0; k <= bytes.length; k++) {
        const result = parseProxyHeader(bytes.subarray(0, k));
        if (k < consumed) assert.deepEqual(result, { kind: "more" }, `at ${k} of ${consumed} bytes`);
        else assert.deepEqual(result, whole, `at ${k} bytes`);
      }
    });
  }

  test("a v2 header of the maximum length fed in 1000-byte steps", () => {
    const bytes = v2(0x21, 0x00, tlv(0x04, new Uint8Array(65532)));
    for (let k = 0; k < bytes.length; k += 1000) {
      assert.equal(parseProxyHeader(bytes.subarray(0, k), { maxLength: 65551 }).kind, "more");
    }
  });
});

describe('"none": the first byte that differs from both signatures decides', () => {
  const prefixes = [text("PROXY"), new Uint8Array(SIG)];
  for (const prefix of prefixes) {
    test(`every byte that breaks ${prefix.length === 5 ? '"PROXY"' : "the v2 signature"} at every position`, () => {
      for (let i = 0; i < prefix.length; i++) {
        assert.equal(parseProxyHeader(prefix.subarray(0, i)).kind, "more", `${i} matching bytes`);
        for (let byte = 0; byte < 256; byte++) {
          const bytes = concat(prefix.subarray(0, i), new Uint8Array([byte]));
          const expected = byte === prefix[i] || (i === 0 && (byte === 0x50 || byte === 0x0d)) ? "more" : "none";
          assert.equal(parseProxyHeader(bytes).kind, expected, `byte 0x${byte.toString(16)} at ${i}`);
        }
      }
    });
  }

  test('nothing yet is "more"; HTTP, TLS, SSH and a lone CRLF are "none" at once', () => {
    assert.deepEqual(parseProxyHeader(new Uint8Array()), { kind: "more" });
    for (
      const start of [
        text("GET / HTTP/1.1\r\n"),
        new Uint8Array([0x16, 0x03, 0x01]),
        text("SSH-2.0-x"),
        text("\r\nGET"),
      ]
    ) {
      assert.deepEqual(parseProxyHeader(start), { kind: "none" });
    }
    assert.deepEqual(parseProxyHeader(text("POST /")), { kind: "none" }, "decided at its second byte");
  });
});

describe("buildProxyHeader", () => {
  const tcp4: ProxyHeader = {
    version: 2,
    command: "proxy",
    transport: "tcp4",
    source: { hostname: "192.168.0.1", port: 56324 },
    destination: { hostname: "192.168.0.11", port: 443 },
    tlvs: [],
  };

  test("writes the spec's bytes, v1 and v2, and a CRC32C as an independent CRC32C computes it", () => {
    assert.deepEqual(buildProxyHeader({ ...tcp4, version: 1 }), VALID[0]!.bytes.subarray(0, 47));
    assert.deepEqual(buildProxyHeader(tcp4), v2(0x21, 0x11, IPV4_BLOCK));
    assert.deepEqual(buildProxyHeader({ ...tcp4, command: "local" }), v2(0x20, 0x00, []));
    assert.deepEqual(
      buildProxyHeader({ version: 1, command: "local", transport: "unspec", tlvs: [] }),
      text("PROXY UNKNOWN\r\n"),
    );
    const withCrc = buildProxyHeader(tcp4, { crc32c: true });
    const zeroed = withCrc.slice();
    zeroed.fill(0, zeroed.length - 4);
    assert.equal(new DataView(withCrc.buffer).getUint32(withCrc.length - 4), crc32cBitwise(zeroed));
  });

  const refusals: [string, () => unknown, RegExp][] = [
    [
      "an IPv6 address for tcp4",
      () => buildProxyHeader({ ...tcp4, source: { hostname: "::1", port: 1 } }),
      /'source.hostname' must be an IPv4 address for tcp4: current value is "::1"/,
    ],
    [
      "an IPv4 address for tcp6",
      () => buildProxyHeader({ ...tcp4, transport: "tcp6" }),
      /'source.hostname' must be an IPv6 address for tcp6/,
    ],
    [
      "a port of 65536",
      () => buildProxyHeader({ ...tcp4, destination: { hostname: "1.2.3.4", port: 65536 } }),
      /'destination.port' must be an integer from 0 to 65535: current value is 65536/,
    ],
    [
      "udp4 in version 1",
      () => buildProxyHeader({ ...tcp4, version: 1, transport: "udp4" }),
      /'transport' must be tcp4 or tcp6/,
    ],
    [
      "TLVs in version 1",
      () => buildProxyHeader({ ...tcp4, version: 1, tlvs: [{ type: 4, value: new Uint8Array() }] }),
      /'tlvs' must be empty for version 1/,
    ],
    [
      "crc32c in version 1",
      () => buildProxyHeader({ ...tcp4, version: 1 }, { crc32c: true }),
      /'crc32c' must not be set for version 1/,
    ],
    [
      "a CRC32C TLV with crc32c: true",
      () => buildProxyHeader({ ...tcp4, tlvs: [{ type: 3, value: new Uint8Array(4) }] }, { crc32c: true }),
      /'tlvs\[0\].type' must not be CRC32C/,
    ],
    [
      "a TLV type of 256",
      () => buildProxyHeader({ ...tcp4, tlvs: [{ type: 256, value: new Uint8Array() }] }),
      /'tlvs\[0\].type' must be from 0 to 255/,
    ],
    [
      "TLVs over 65535 bytes",
      () => buildProxyHeader({ ...tcp4, tlvs: [{ type: 4, value: new Uint8Array(65535) }] }),
      /'tlvs' must fit with the addresses in 65535 bytes: current value is 65550/,
    ],
    [
      "a Unix path over 108 bytes",
      () =>
        buildProxyHeader({
          version: 2,
          command: "proxy",
          transport: "unix",
          source: { path: "x".repeat(109) },
          destination: { path: "" },
          tlvs: [],
        }),
      /'source.path' must be a string of at most 108 bytes/,
    ],
  ];
  for (const [name, build, message] of refusals) {
    test(`refuses ${name} with a RangeError naming the field`, () => {
      assert.throws(
        build,
        (err: unknown) =>
          err instanceof RangeError && message.test(err.message) &&
          err.message.startsWith("Cannot build a PROXY header as '"),
      );
    });
  }
});

describe("IPv6 addresses read as Node's net prints them", () => {
  // Each seen as socket.remoteAddress on Node 20 and 24, from a client bound to that address.
  const seen: [string, string][] = [
    ["0:0:0:0:0:0:0:2", "::2"],
    ["0:0:0:0:0:0:102:304", "::1.2.3.4"],
    ["::0001:0000", "::0.1.0.0"],
    ["0:0:0:0:1:0:0:0", "::1:0:0:0"],
    ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
    ["::100", "::100"],
    ["::ffff:0:1.2.3.4", "::ffff:0:102:304"],
    ["0:0:1:0:0:0:0:0", "0:0:1::"],
    ["::1:ffff:1.2.3.4", "::1:ffff:102:304"],
    ["::ffff:7f00:1", "::ffff:127.0.0.1"],
    ["::ffff:0.0.0.0", "::ffff:0.0.0.0"],
    ["0::0", "::"],
    ["0:0::1", "::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["FE80::ABCD", "fe80::abcd"],
  ];
  for (const [written, printed] of seen) {
    test(`${written} is ${printed}`, () => {
      const { header } = parsed(text(`PROXY TCP6 ${written} ::1 1 2\r\n`));
      assert.equal(header.transport === "tcp6" && header.source.hostname, printed);
    });
  }
});
