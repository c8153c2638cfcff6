// Property-based tests (fast-check): thousands of generated configs, counts and addresses. Config
// validation never fails other than with its documented TypeError or RangeError naming a field;
// IP literals are recognised exactly as RFC 3986 writes them; host:port addresses round-trip;
// createListener on generated input only ever rejects with a typed error and leaks no descriptor;
// and parseAddress(formatAddress(x)) gives back x.
// Set FC_SEED to replay a failure.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import process from "node:process";
import fc from "fast-check";
import { createListener, formatAddress, ListenError, parseAddress, type ServerConfig } from "../mod.ts";
import { checkCount, normalizeConfig } from "../src/_config.ts";
import { isIPv4, isIPv6 } from "../src/_ip.ts";
import { formatHostPort } from "../src/_address.ts";
import { canCountFds, fdTargets, leakedFds } from "./_fd.ts";

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
/** fast-check parameters: `numRuns` generated inputs. */
const runs = (numRuns: number) => ({ numRuns, ...(seed === undefined ? {} : { seed }) });
/** The same, trying `examples` (edge cases found before, kept as regression tests) first. */
const withExamples = <T>(numRuns: number, examples: T[]) => ({
  ...runs(numRuns),
  examples: examples.map((e) => [e] as [T]),
});

// RFC 3986, section 3.2.2: IPv6address and IPv4address, as an independent oracle.
const h16 = "[0-9a-fA-F]{1,4}";
const dec = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
const v4 = `${dec}(?:\\.${dec}){3}`;
const ls32 = `(?:${h16}:${h16}|${v4})`;
const times = (n: number) => (n === 0 ? "" : `(?:${h16}:){${n}}`);
const upTo = (n: number) => (n === 0 ? `(?:${h16})?` : `(?:(?:${h16}:){0,${n}}${h16})?`);
const v6 = [
  `${times(6)}${ls32}`,
  `::${times(5)}${ls32}`,
  `${upTo(0)}::${times(4)}${ls32}`,
  `${upTo(1)}::${times(3)}${ls32}`,
  `${upTo(2)}::${times(2)}${ls32}`,
  `${upTo(3)}::${h16}:${ls32}`,
  `${upTo(4)}::${ls32}`,
  `${upTo(5)}::${h16}`,
  `${upTo(6)}::`,
].join("|");
const IPV4 = new RegExp(`^${v4}$`);
// RFC 6874 ZoneID: unreserved characters.
const IPV6 = new RegExp(`^(?:${v6})(?:%[0-9A-Za-z._~-]+)?$`);

/** Strings built from the pieces addresses are made of, to land near the edges of the grammar. */
const addressLike = fc.array(
  fc.constantFrom("0", "1", "7f", "ffff", "FFFF", "12345", "g", ":", "::", ".", "1.2.3.4", "256", "01", "%eth0", "%"),
  { maxLength: 12 },
).map((parts) => parts.join(""));

const oddNumbers = fc.oneof(
  fc.double(),
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 1, 65535, 65536, 511, 512, 2 ** 53, -1),
);
const anyValue = fc.oneof(oddNumbers, fc.string(), fc.anything(), fc.constantFrom(undefined, null, true));
const hosts = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), addressLike, fc.domain(), fc.string(), anyValue);
const config = fc.record({
  host: hosts,
  port: fc.oneof(fc.integer({ min: -1, max: 70000 }), anyValue),
  backlog: fc.oneof(fc.integer({ min: -1, max: 70000 }), anyValue),
  udsMode: fc.oneof(fc.integer({ min: -1, max: 0o1000 }), anyValue),
  uds: fc.oneof(fc.constant(undefined), fc.string(), fc.string({ unit: "binary" }), anyValue),
}, { requiredKeys: [] });

/** Checks an error is one polybind documents for config validation, and names the field. */
function checkValidationError(err: unknown): void {
  assert.ok(err instanceof TypeError || err instanceof RangeError, `undocumented ${String(err)}`);
  assert.match(err.message, /^Cannot listen as ('[a-zA-Z.]+'|an? |abstract )|^count must/, err.message);
}

test("normalizeConfig: a normalized config or a TypeError/RangeError naming the field (10,000 configs)", () => {
  fc.assert(
    fc.property(fc.oneof({ weight: 9, arbitrary: config }, { weight: 1, arbitrary: anyValue }), (input) => {
      let out: ReturnType<typeof normalizeConfig>;
      try {
        out = normalizeConfig(input as never, "linux");
      } catch (err) {
        checkValidationError(err);
        return;
      }
      assert.ok(Number.isInteger(out.backlog) && out.backlog >= 1 && out.backlog <= 65535);
      if (out.kind === "inet") {
        assert.ok(Number.isInteger(out.port) && out.port >= 0 && out.port <= 65535, `port ${out.port}`);
        assert.ok(typeof out.host === "string" && out.host.length > 0 && out.host.length <= 253);
        if (out.host.includes(":")) assert.ok(IPV6.test(out.host), `accepted as IPv6: ${JSON.stringify(out.host)}`);
        if (/^[\d.]+$/.test(out.host)) assert.ok(IPV4.test(out.host), `accepted as IPv4: ${out.host}`);
      }
      if (out.kind === "unix") {
        assert.ok(Number.isInteger(out.mode) && out.mode >= 0 && out.mode <= 0o777);
        assert.ok(new TextEncoder().encode(out.path).length <= 107);
      }
    }),
    withExamples<unknown>(10_000, [{ host: "::1:" }, { host: "1::2:" }, { host: "::%eth0::" }, {
      host: "fe80::1%eth0",
    }]),
  );
});

test("checkCount: the count itself or a TypeError/RangeError naming 'count' (5,000 values)", () => {
  fc.assert(
    fc.property(fc.oneof(fc.integer({ min: -10, max: 2000 }), anyValue), (count) => {
      try {
        assert.equal(checkCount(count), count);
        assert.ok(Number.isInteger(count) && (count as number) >= 1 && (count as number) <= 1024);
      } catch (err) {
        assert.ok(err instanceof TypeError || err instanceof RangeError, String(err));
        assert.match(err.message, /\bcount\b/);
      }
    }),
    runs(5_000),
  );
});

test("isIPv4 and isIPv6 agree with RFC 3986 (10,000 strings)", () => {
  const zone = fc.stringMatching(/^%[0-9a-zA-Z]{1,8}$/);
  const candidates = fc.oneof(
    fc.ipV4(),
    fc.ipV4Extended(),
    fc.ipV6(),
    fc.tuple(fc.ipV6(), zone).map(([ip, z]) => ip + z),
    addressLike,
    fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEFg:.%") }),
  );
  fc.assert(
    fc.property(candidates, (s) => {
      assert.equal(isIPv4(s), IPV4.test(s), `isIPv4(${JSON.stringify(s)})`);
      assert.equal(isIPv6(s), IPV6.test(s), `isIPv6(${JSON.stringify(s)})`);
    }),
    withExamples(10_000, [
      "::1:",
      "::0:",
      "1::2:",
      "::%eth0::",
      "::%::",
      "::%1.2.3.4",
      "1:2:3:4:5:6:1.2.3.4",
      "::ffff:1.2.3.4:",
    ]),
  );
});

test("host:port addresses round-trip through validation and formatting (5,000 addresses)", () => {
  const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV6().map((ip) => `[${ip}]`), fc.domain());
  fc.assert(
    fc.property(host, fc.integer({ min: 0, max: 65535 }), (given, port) => {
      const out = normalizeConfig({ host: given, port }, "linux");
      assert.equal(out.kind, "inet");
      if (out.kind !== "inet") return;
      const bare = given.startsWith("[") ? given.slice(1, -1) : given;
      assert.equal(out.host, bare);
      assert.equal(out.port, port);
      const text = formatHostPort(out.host, out.port);
      const colon = text.lastIndexOf(":");
      const back = text.slice(0, colon);
      assert.equal(back.startsWith("["), bare.includes(":"), `brackets exactly for IPv6: ${text}`);
      assert.equal(back.startsWith("[") ? back.slice(1, -1) : back, bare);
      assert.equal(Number(text.slice(colon + 1)), port);
    }),
    runs(5_000),
  );
});

test("createListener on generated input: bound and closed, or a typed error; no descriptor leaks (300 tries)", {
  timeout: 60_000,
}, async () => {
  const before = canCountFds ? fdTargets() : new Map();
  // No host that needs DNS, no port but 0: every valid config binds loopback or fails fast.
  const host = fc.oneof(
    fc.constantFrom("127.0.0.1", "::1", "0.0.0.0", "::", "127.1.2.3", "192.0.2.1", "2001:db8::1"),
    fc.ipV4().map((ip) => (ip.startsWith("127.") ? ip : `${ip}x y`)),
    addressLike.map((s) => (IPV4.test(s) || IPV6.test(s) ? "127.0.0.1" : s + " ")),
    anyValue.map((v) => (typeof v === "string" ? `${v} ` : v)),
  );
  const port = fc.oneof(fc.constant(0), oddNumbers.filter((n) => !Number.isInteger(n) || n < 0 || n > 65535), anyValue)
    .filter((p) => p === 0 || typeof p !== "number" || !Number.isInteger(p) || p < 0 || p > 65535);
  const generated = fc.record({ host, port, backlog: fc.oneof(fc.constant(undefined), oddNumbers) }, {
    requiredKeys: ["port"],
  });
  let bound = 0;
  await fc.assert(
    fc.asyncProperty(generated, async (input) => {
      let listener: Awaited<ReturnType<typeof createListener>>;
      try {
        listener = await createListener(input as never);
      } catch (err) {
        assert.ok(
          err instanceof TypeError || err instanceof RangeError || err instanceof ListenError,
          `undocumented ${String(err)}`,
        );
        return;
      }
      bound++;
      await listener.close();
    }),
    runs(300),
  );
  console.log(`[figure] fuzzed createListener: ${bound} of 300 generated configs bound, the rest refused`);
  assert.ok(bound > 0, "some generated configs were valid");
  if (canCountFds) {
    assert.deepEqual(await leakedFds(before), [], "no descriptor left open");
  }
});

describe("parseAddress and formatAddress", () => {
  const path = fc.array(fc.stringMatching(/^[A-Za-z0-9._@-]{1,12}$/), { minLength: 1, maxLength: 5 });
  const configs: fc.Arbitrary<ServerConfig> = fc.oneof(
    fc.record({ host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()), port: fc.integer({ min: 0, max: 65535 }) }),
    path.map((parts) => ({ uds: "/" + parts.join("/") })),
    path.map((parts) => ({ uds: parts.join("/") })), // relative, possibly starting with "@"
    path.map((parts) => ({ uds: "//" + parts.join("/") })), // a path may start with "//"
    fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/).map((name) => ({ uds: "\0" + name })), // abstract
    fc.integer({ min: 0, max: 1_000_000 }).map((fd) => ({ fd })),
    fc.oneof(fc.constant(true as const), fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/)).map((systemd) => ({ systemd })),
  );

  /** The same socket: equal configs, with file paths compared once resolved ("a" and "./a" are one file). */
  const sameSocket = (a: ServerConfig, b: ServerConfig, text: string) => {
    const file = (c: ServerConfig) => (c.uds !== undefined && !c.uds.startsWith("\0") ? resolve(c.uds) : c.uds);
    assert.deepEqual({ ...a, uds: file(a) }, { ...b, uds: file(b) }, text);
  };

  test("parseAddress(formatAddress(x)) gives back x (10,000 configs)", () => {
    fc.assert(
      fc.property(configs, (config) => {
        const text = formatAddress(config);
        sameSocket(parseAddress(text), config, text);
      }),
      withExamples<ServerConfig>(10_000, [{ uds: "//run/app.sock" }, { uds: "@app.sock" }, { uds: "\0app" }]),
    );
  });

  test("parseAddress on any string: a config polybind accepts, or a TypeError/RangeError quoting it", () => {
    const pieces = fc.constantFrom("unix:", "tcp://", "fd://", "sd-listen", ":", "[", "]", "::1", "/", "@", "80", "x");
    const text = fc.oneof(fc.string(), fc.array(pieces, { maxLength: 8 }).map((p) => p.join("")), fc.anything());
    fc.assert(
      fc.property(text, (s) => {
        let config: ServerConfig;
        try {
          config = parseAddress(s as string);
        } catch (err) {
          assert.ok(err instanceof TypeError || err instanceof RangeError, String(err));
          if (typeof s === "string" && s.length > 0 && s.length < 200) {
            assert.ok(err.message.includes(JSON.stringify(s)), `quotes the input: ${err.message}`);
          }
          return;
        }
        try {
          normalizeConfig(config, "linux");
        } catch (err) {
          assert.ok(err instanceof TypeError || err instanceof RangeError, String(err));
        }
        // Formatting is a fixpoint from there on.
        sameSocket(parseAddress(formatAddress(config)), config, formatAddress(config));
      }),
      withExamples<unknown>(10_000, ["//", "unix:@x", "/tmp/a.sock", "[::1]:80"]),
    );
  });
});
