// The PROXY protocol policy without sockets: options checked and defaulted, trusted blocks
// (IPv4, IPv6, IPv4-mapped peers), the Conn after a header over a fake inner Conn (addresses,
// leftover bytes first through read() and readable, the Conn contract), and the command's flags.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkProxyProtocol, inBlocks, parseCidr, trustsEveryPeer } from "../src/_proxy_options.ts";
import { proxiedConn, showProxyAddrs } from "../src/_proxy_conn.ts";
import type { ProxyHeader } from "../src/_proxy_header.ts";
import type { Addr, Conn } from "../mod.ts";
import { parseCommand, UsageError } from "../cli/args.ts";

describe("checkProxyProtocol", () => {
  test("true gives the defaults: loopback only, required, 5 s; false and undefined give nothing", () => {
    const options = checkProxyProtocol(true)!;
    assert.deepEqual(options.trusted.map((b) => b.text), ["127.0.0.0/8", "::1"]);
    assert.equal(options.timeoutMs, 5000);
    assert.equal(options.required, true);
    assert.equal(checkProxyProtocol(false), undefined);
    assert.equal(checkProxyProtocol(undefined), undefined);
    assert.deepEqual(checkProxyProtocol({}), options);
  });

  test("an object's fields are kept", () => {
    const options = checkProxyProtocol({ trusted: ["10.0.0.0/8", "2001:db8::/32"], timeoutMs: 200, required: false })!;
    assert.deepEqual(options.trusted.map((b) => [b.text, b.prefix]), [["10.0.0.0/8", 104], ["2001:db8::/32", 32]]);
    assert.equal(options.timeoutMs, 200);
    assert.equal(options.required, false);
  });

  const bad: [string, unknown, typeof TypeError | typeof RangeError, RegExp][] = [
    ["not an object", "yes", TypeError, /'proxyProtocol' must be true, false or an object .*: current value is "yes"/],
    ["an array", [], TypeError, /'proxyProtocol' must be/],
    ["trusted not an array", { trusted: "10.0.0.0/8" }, TypeError, /'proxyProtocol.trusted' must be an array/],
    [
      "a block not a string",
      { trusted: [10] },
      TypeError,
      /'proxyProtocol.trusted\[0\]' must be a string: current value is 10/,
    ],
    ["a host name", { trusted: ["localhost"] }, RangeError, /'proxyProtocol.trusted\[0\]' must be an IPv4 or IPv6/],
    [
      "a prefix too long",
      { trusted: ["::1", "10.0.0.0/33"] },
      RangeError,
      /'proxyProtocol.trusted\[1\]'.*"10.0.0.0\/33"/,
    ],
    ["a prefix with a leading zero", { trusted: ["10.0.0.0/08"] }, RangeError, /trusted\[0\]/],
    ["an IPv6 zone", { trusted: ["fe80::1%eth0"] }, RangeError, /trusted\[0\]/],
    ["timeoutMs a string", { timeoutMs: "5000" }, TypeError, /'proxyProtocol.timeoutMs' must be a number/],
    [
      "timeoutMs 0",
      { timeoutMs: 0 },
      RangeError,
      /'proxyProtocol.timeoutMs' must be an integer from 1 to 2147483647: current value is 0$/,
    ],
    ["timeoutMs 1.5", { timeoutMs: 1.5 }, RangeError, /timeoutMs/],
    [
      "required a string",
      { required: "no" },
      TypeError,
      /'proxyProtocol.required' must be a boolean: current value is "no"/,
    ],
    [
      "an unknown field",
      { trust: ["10.0.0.0/8"] },
      RangeError,
      /'proxyProtocol.trust' is not an option \(trusted, timeoutMs, required\)/,
    ],
  ];
  for (const [name, value, kind, message] of bad) {
    test(`refuses ${name} with a ${kind.name} naming the field`, () => {
      assert.throws(() => checkProxyProtocol(value), (err: Error) => {
        assert.ok(err instanceof kind, `${err.name}: ${err.message}`);
        assert.match(err.message, /^Cannot listen as /);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe("trusted blocks", () => {
  const blocks = (...texts: string[]) => texts.map((t) => parseCidr(t)!);
  const cases: [string[], string, boolean][] = [
    [["127.0.0.0/8"], "127.0.0.1", true],
    [["127.0.0.0/8"], "127.255.3.4", true],
    [["127.0.0.0/8"], "128.0.0.1", false],
    [["127.0.0.0/8"], "::ffff:127.0.0.1", true],
    [["127.0.0.0/8"], "::1", false],
    [["::1"], "::1", true],
    [["::1"], "127.0.0.1", false],
    [["10.1.2.3"], "10.1.2.3", true],
    [["10.1.2.3"], "10.1.2.4", false],
    [["10.1.2.3/8"], "10.200.0.1", true],
    [["192.168.0.0/23"], "192.168.1.255", true],
    [["192.168.0.0/23"], "192.168.2.0", false],
    [["0.0.0.0/0"], "203.0.113.9", true],
    [["0.0.0.0/0"], "2001:db8::1", false],
    [["2001:db8::/32"], "2001:db8:ffff::1", true],
    [["2001:db8::/33"], "2001:db8:8000::1", false],
    [["::/0"], "fe80::1", true],
    [["::ffff:0:0/96"], "10.0.0.1", true],
    [["10.0.0.0/8", "::1"], "::1", true],
    [["127.0.0.0/8"], "not an address", false],
    [["127.0.0.0/8"], "", false],
  ];
  for (const [trusted, peer, expected] of cases) {
    test(`${peer || '""'} is ${expected ? "" : "not "}in ${trusted.join(", ")}`, () => {
      assert.equal(inBlocks(peer, blocks(...trusted)), expected);
    });
  }
});

describe("blocks that trust every peer a listener can have (no peer is then asked its address)", () => {
  const blocks = (...texts: string[]) => texts.map((t) => parseCidr(t)!);
  const tcp = (hostname: string): Addr => ({ transport: "tcp", hostname, port: 80 });
  const unix: Addr = { transport: "unix", path: "/tmp/s" };
  const cases: [string[], Addr[], boolean][] = [
    [["0.0.0.0/0"], [tcp("0.0.0.0")], true],
    [["0.0.0.0/0"], [tcp("127.0.0.1")], true],
    [["::/0"], [tcp("127.0.0.1")], true],
    [["::ffff:0:0/96"], [tcp("10.0.0.1")], true],
    [["0.0.0.0/1", "128.0.0.0/1"], [tcp("0.0.0.0")], false],
    [["0.0.0.0/0"], [tcp("::")], false],
    [["0.0.0.0/0"], [tcp("::1")], false],
    [["::/0"], [tcp("::")], true],
    [["0.0.0.0/0", "::/0"], [tcp("0.0.0.0"), tcp("::")], true],
    [["0.0.0.0/0"], [tcp("0.0.0.0"), tcp("::")], false],
    [["127.0.0.0/8", "::1"], [tcp("127.0.0.1")], false],
    [["10.0.0.0/8"], [unix], true],
    [["::/1"], [tcp("::")], false],
  ];
  for (const [trusted, addrs, expected] of cases) {
    const where = addrs.map((a) => a.transport === "tcp" ? a.hostname : "unix").join(" and ");
    test(`${trusted.join(", ")} ${expected ? "covers" : "does not cover"} a listener on ${where}`, () => {
      assert.equal(trustsEveryPeer(blocks(...trusted), addrs), expected);
    });
  }
});

/** A Conn over fixed chunks, recording what is done to it. */
function fakeConn(chunks: string[], remote: Addr, local: Addr) {
  const encoder = new TextEncoder();
  const queue = chunks.map((c) => encoder.encode(c));
  const log: string[] = [];
  let readable: ReadableStream<Uint8Array> | undefined;
  const conn: Conn = {
    remoteAddr: remote,
    localAddr: local,
    native: undefined,
    read(p) {
      if (readable !== undefined) return Promise.reject(new TypeError("taken"));
      const chunk = queue.shift();
      if (chunk === undefined) return Promise.resolve(null);
      p.set(chunk);
      return Promise.resolve(chunk.length);
    },
    get readable() {
      return readable ??= new ReadableStream({
        pull: (c) => {
          const chunk = queue.shift();
          if (chunk === undefined) c.close();
          else c.enqueue(chunk);
        },
      });
    },
    writable: new WritableStream(),
    write: (p) => (log.push(`write ${p.length}`), Promise.resolve(p.length)),
    closeWrite: () => (log.push("closeWrite"), Promise.resolve()),
    close: () => void log.push("close"),
    setNoDelay: (on) => void log.push(`noDelay ${on}`),
    setKeepAlive: (on) => void log.push(`keepAlive ${on}`),
    [Symbol.asyncDispose]: () => (log.push("close"), Promise.resolve()),
  };
  return { conn, log };
}

const PEER: Addr = { transport: "tcp", hostname: "127.0.0.1", port: 40000 };
const OURS: Addr = { transport: "tcp", hostname: "127.0.0.1", port: 8000 };
const TCP4: ProxyHeader = {
  version: 2,
  command: "proxy",
  transport: "tcp4",
  source: { hostname: "203.0.113.7", port: 51000 },
  destination: { hostname: "192.0.2.1", port: 443 },
  tlvs: [{ type: 0x02, value: new TextEncoder().encode("example.com") }],
};
const text = (bytes: Uint8Array, n: number | null) => new TextDecoder().decode(bytes.subarray(0, n ?? 0));

describe("the Conn after a header", () => {
  test("has the header's addresses, `proxy` with `via`, and passes the rest through", async () => {
    const { conn: inner, log } = fakeConn([], PEER, OURS);
    const conn = proxiedConn(inner, TCP4, undefined);
    assert.deepEqual(conn.remoteAddr, { transport: "tcp", hostname: "203.0.113.7", port: 51000 });
    assert.deepEqual(conn.localAddr, { transport: "tcp", hostname: "192.0.2.1", port: 443 });
    assert.equal(conn.proxy?.version, 2);
    assert.equal(conn.proxy?.transport, "tcp4");
    assert.deepEqual(conn.proxy?.via.remoteAddr, PEER);
    assert.deepEqual(conn.proxy?.via.localAddr, OURS);
    assert.equal(conn.proxy?.tlvs.length, 1);
    await conn.write(new Uint8Array(3));
    await conn.closeWrite();
    conn.setNoDelay(true);
    conn.setKeepAlive(false);
    conn.close();
    assert.deepEqual(log, ["write 3", "closeWrite", "noDelay true", "keepAlive false", "close"]);
  });

  test("a LOCAL header (or v1 UNKNOWN) keeps the connection's own addresses", () => {
    const { conn: inner } = fakeConn([], PEER, OURS);
    const conn = proxiedConn(
      inner,
      { version: 2, command: "local", transport: "unspec", tlvs: [] },
      undefined,
    );
    assert.deepEqual(conn.remoteAddr, PEER);
    assert.deepEqual(conn.localAddr, OURS);
    assert.equal(conn.proxy?.command, "local");
  });

  test("a Unix header gives Unix addresses", () => {
    const { conn: inner } = fakeConn([], PEER, OURS);
    const header: ProxyHeader = {
      version: 2,
      command: "proxy",
      transport: "unix",
      source: { path: "/run/client.sock" },
      destination: { path: "/run/app.sock" },
      tlvs: [],
    };
    const conn = proxiedConn(inner, header, undefined);
    assert.deepEqual(conn.remoteAddr, { transport: "unix", path: "/run/client.sock" });
    assert.deepEqual(conn.localAddr, { transport: "unix", path: "/run/app.sock" });
  });

  test("no header and nothing left over: the inner Conn itself", () => {
    const { conn: inner } = fakeConn([], PEER, OURS);
    assert.equal(proxiedConn(inner, undefined, new Uint8Array(0)), inner);
  });

  test("read() gives the leftover bytes first, in pieces as small as the buffer, then the inner Conn's", async () => {
    const { conn: inner } = fakeConn(["world"], PEER, OURS);
    const conn = proxiedConn(inner, TCP4, new TextEncoder().encode("hello "));
    const buf = new Uint8Array(4);
    assert.equal(text(buf, await conn.read(buf)), "hell");
    assert.equal(text(buf, await conn.read(buf)), "o ");
    const big = new Uint8Array(64);
    assert.equal(text(big, await conn.read(big)), "world");
    assert.equal(await conn.read(big), null);
  });

  test("readable gives the leftover bytes first, then the inner stream; read() after it is a TypeError", async () => {
    const { conn: inner } = fakeConn(["world", "!"], PEER, OURS);
    const conn = proxiedConn(inner, undefined, new TextEncoder().encode("hello "));
    assert.deepEqual(conn.remoteAddr, PEER, "no header: its own address");
    let all = "";
    const reader = conn.readable.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) all += new TextDecoder().decode(r.value);
    reader.releaseLock();
    assert.equal(all, "hello world!");
    assert.equal(conn.readable, conn.readable, "one stream");
    await assert.rejects(conn.read(new Uint8Array(8)), TypeError);
  });

  test("the leftover bytes' buffer goes back once: read to the end, copied by readable, dropped at close", async () => {
    const make = () => {
      const calls: string[] = [];
      const { conn: inner } = fakeConn([], PEER, OURS);
      const conn = proxiedConn(inner, TCP4, new TextEncoder().encode("abcdef"), () => calls.push("release"));
      return { conn, calls };
    };
    const read = make();
    const buf = new Uint8Array(4);
    await read.conn.read(buf);
    assert.deepEqual(read.calls, [], "not while bytes are left");
    await read.conn.read(buf);
    read.conn.close();
    assert.deepEqual(read.calls, ["release"]);
    const streamed = make();
    const reader = streamed.conn.readable.getReader();
    assert.deepEqual(streamed.calls, ["release"], "readable copies them");
    assert.equal(new TextDecoder().decode((await reader.read()).value), "abcdef");
    reader.releaseLock();
    const closed = make();
    closed.conn.close();
    closed.conn.close();
    assert.deepEqual(closed.calls, ["release"]);
    const calls: string[] = [];
    proxiedConn(fakeConn([], PEER, OURS).conn, TCP4, new Uint8Array(0), () => calls.push("release"));
    assert.deepEqual(calls, ["release"], "nothing left: at once");
  });

  test("readable without leftover bytes is the inner Conn's own stream", () => {
    const { conn: inner } = fakeConn([], PEER, OURS);
    const conn = proxiedConn(inner, TCP4, undefined);
    assert.equal(conn.readable, inner.readable);
  });

  test("showProxyAddrs gives a socket handed to node:http the header's addresses; `via` keeps the real ones", () => {
    const { conn: inner } = fakeConn([], PEER, OURS);
    const socket = { remoteAddress: "127.0.0.1" } as Record<string, unknown>;
    const conn = proxiedConn(inner, TCP4, undefined);
    showProxyAddrs(conn, socket);
    assert.deepEqual(conn.proxy?.via.remoteAddr, PEER);
    assert.deepEqual(conn.proxy?.via.localAddr, OURS);
    const untouched = { remoteAddress: "127.0.0.1" };
    showProxyAddrs(
      proxiedConn(inner, { version: 1, command: "local", transport: "unspec", tlvs: [] }, undefined),
      untouched,
    );
    assert.deepEqual(untouched, { remoteAddress: "127.0.0.1" }, "a LOCAL header changes nothing");
    assert.equal(socket.remoteAddress, "203.0.113.7");
    assert.equal(socket.remotePort, 51000);
    assert.equal(socket.remoteFamily, "IPv4");
    assert.equal(socket.localAddress, "192.0.2.1");
    assert.equal(socket.localPort, 443);
    assert.deepEqual((socket.address as () => unknown)(), { address: "192.0.2.1", family: "IPv4", port: 443 });
  });
});

describe("polybind serve --proxy-protocol", () => {
  const serve = (...args: string[]) => parseCommand(["serve", ...args]);

  test("off by default; --proxy-protocol alone takes the defaults; --proxy-trusted adds blocks", () => {
    assert.equal((serve() as { proxyProtocol?: unknown }).proxyProtocol, undefined);
    assert.deepEqual((serve("--proxy-protocol") as { proxyProtocol?: unknown }).proxyProtocol, {});
    const blocks = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1", "0.0.0.0/0", "::/0"];
    const command = serve("--proxy-protocol", ...blocks.flatMap((b) => ["--proxy-trusted", b]));
    const options = (command as { proxyProtocol?: { trusted?: string[] } }).proxyProtocol;
    assert.deepEqual(options, { trusted: blocks });
    assert.deepEqual(checkProxyProtocol(options)?.trusted.map((b) => b.text), blocks, "the listener agrees");
  });

  test("--proxy-trusted without --proxy-protocol, and a bad block, are usage errors", () => {
    assert.throws(
      () => serve("--proxy-trusted", "10.0.0.0/8"),
      (err: Error) => err instanceof UsageError && /--proxy-trusted needs --proxy-protocol/.test(err.message),
    );
    for (const block of ["localhost", "10.0.0.0/33", "10.0.0.0/08", "::1/129", "fe80::1%eth0", "1.2.3.4/8/8", ""]) {
      assert.throws(
        () => serve("--proxy-protocol", "--proxy-trusted", block),
        (err: Error) => err instanceof UsageError && err.message.includes(JSON.stringify(block)),
        block,
      );
      assert.throws(() => checkProxyProtocol({ trusted: [block] }), RangeError, `the listener refuses ${block} too`);
    }
  });
});
