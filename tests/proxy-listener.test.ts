// The PROXY protocol on real sockets, with node:net clients sending real headers (built by
// buildProxyHeader) to a listener wrapped by withProxyProtocol: v1 and v2, IPv4 and IPv6
// addresses, LOCAL and UNKNOWN, TLVs, the bytes after the header through read() and readable,
// Unix sockets, the trust policy, and every malformed, slow, truncated or refused header closing
// its own connection only while the listener goes on serving, with no descriptor left open.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildProxyHeader,
  createListener,
  type Listener,
  ListenError,
  type ProxyProtocolOptions,
  type ServerConfig,
  withProxyProtocol,
} from "../mod.ts";
import { canCountFds, fdTargets, leakedFds } from "./_fd.ts";
import { portOf, tempDir } from "./_helpers.ts";
import { parseSeen, type Seen, serveSeen, talk, tcpHeader, until } from "./_proxy_net.ts";
import { SIG, v2 } from "./_proxy_vectors.ts";

const T = { timeout: 30_000 };
const LOOPBACK: ProxyProtocolOptions = { trusted: ["127.0.0.1"] };

interface Server {
  readonly listener: Listener;
  /** The port, or the socket path. */
  readonly to: number | string;
  readonly served: Seen[];
}

/**
 * Runs `fn` against a wrapped listener served by serveSeen, then closes it and checks that no
 * descriptor was left open.
 */
async function withServer(
  options: ProxyProtocolOptions | true,
  fn: (server: Server) => Promise<void>,
  { mode = "read", config = { host: "127.0.0.1", port: 0 } }: { mode?: "read" | "stream"; config?: ServerConfig } = {},
): Promise<void> {
  const before = canCountFds ? fdTargets() : undefined;
  const listener = withProxyProtocol(await createListener(config), options);
  const served: Seen[] = [];
  const serving = serveSeen(listener, served, mode);
  try {
    const to = listener.addr.transport === "tcp" ? portOf(listener) : listener.addr.path;
    await fn({ listener, to, served });
  } finally {
    await listener.close();
    await serving;
  }
  if (before !== undefined) assert.deepEqual(await leakedFds(before), [], "no descriptor left open");
}

const hello = (i = 0) => `hello ${i}\n`;

describe("headers that pass", () => {
  const cases: [string, Uint8Array, Seen["remote"], Seen["local"]][] = [
    [
      "v1 TCP4",
      tcpHeader(1),
      { transport: "tcp", hostname: "203.0.113.7", port: 51000 },
      { transport: "tcp", hostname: "192.0.2.1", port: 443 },
    ],
    [
      "v1 TCP6",
      tcpHeader(1, {
        transport: "tcp6",
        source: { hostname: "2001:db8::7", port: 1 },
        destination: { hostname: "2001:db8::1", port: 2 },
      }),
      { transport: "tcp", hostname: "2001:db8::7", port: 1 },
      { transport: "tcp", hostname: "2001:db8::1", port: 2 },
    ],
    [
      "v2 TCP4",
      tcpHeader(2),
      { transport: "tcp", hostname: "203.0.113.7", port: 51000 },
      { transport: "tcp", hostname: "192.0.2.1", port: 443 },
    ],
    [
      "v2 TCP6, an IPv4-mapped client",
      tcpHeader(2, {
        transport: "tcp6",
        source: { hostname: "::ffff:198.51.100.2", port: 65535 },
        destination: { hostname: "2001:db8::1", port: 0 },
      }),
      { transport: "tcp", hostname: "::ffff:198.51.100.2", port: 65535 },
      { transport: "tcp", hostname: "2001:db8::1", port: 0 },
    ],
  ];
  for (const [name, header, remote, local] of cases) {
    test(`${name}: the header's addresses, and the bytes after it first`, T, async () => {
      await withServer(LOOPBACK, async ({ to }) => {
        const seen = parseSeen(await talk(to, [header, hello()]).reply);
        assert.deepEqual(seen.remote, remote);
        assert.deepEqual(seen.local, local);
        assert.equal(seen.proxy?.version, name[1] === "1" ? 1 : 2);
        assert.equal(seen.proxy?.via.transport === "tcp" && seen.proxy.via.hostname, "127.0.0.1");
        assert.equal(seen.first, hello());
      });
    });
  }

  for (
    const [name, header] of [
      ["v2 LOCAL", buildProxyHeader({ version: 2, command: "local", transport: "unspec", tlvs: [] })],
      ["v1 UNKNOWN", new TextEncoder().encode("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")],
    ] as const
  ) {
    test(`${name} keeps the real peer's address`, T, async () => {
      await withServer(LOOPBACK, async ({ to }) => {
        const client = talk(to, [header, hello()]);
        const seen = parseSeen(await client.reply);
        assert.deepEqual(seen.remote, { transport: "tcp", hostname: "127.0.0.1", port: await client.connected });
        assert.equal(seen.local.transport === "tcp" && seen.local.port, to);
        assert.equal(seen.proxy?.command, "local");
        assert.equal(seen.proxy?.transport, "unspec");
      });
    });
  }

  test("v2 TLVs: ALPN, authority, unique ID, and a CRC32C checked", T, async () => {
    const text = (s: string) => new TextEncoder().encode(s);
    const header = buildProxyHeader({
      version: 2,
      command: "proxy",
      transport: "tcp4",
      source: { hostname: "203.0.113.7", port: 51000 },
      destination: { hostname: "192.0.2.1", port: 443 },
      tlvs: [{ type: 0x01, value: text("h2") }, { type: 0x02, value: text("example.com") }, {
        type: 0x05,
        value: text("req-42"),
      }],
    }, { crc32c: true });
    await withServer(LOOPBACK, async ({ to }) => {
      const seen = parseSeen(await talk(to, [header, hello()]).reply);
      assert.equal(seen.proxy?.alpn, "h2");
      assert.equal(seen.proxy?.authority, "example.com");
      assert.equal(seen.proxy?.uniqueId, "req-42");
      assert.equal(typeof seen.proxy?.crc32c, "number");
      assert.equal(seen.first, hello());
    });
  });

  test("a header in pieces, and the request in the same write as its end", T, async () => {
    const header = tcpHeader(2);
    await withServer(LOOPBACK, async ({ to }) => {
      const tail = new Uint8Array([...header.subarray(20), ...new TextEncoder().encode(hello())]);
      const seen = parseSeen(await talk(to, [header.subarray(0, 7), header.subarray(7, 20), tail]).reply);
      assert.equal(seen.remote.transport === "tcp" && seen.remote.hostname, "203.0.113.7");
      assert.equal(seen.first, hello());
    });
  });

  test("through readable and writable: the bytes after the header first, half-close passes through", T, async () => {
    await withServer(LOOPBACK, async ({ to }) => {
      for (const version of [1, 2] as const) {
        const seen = parseSeen(
          await talk(to, [new Uint8Array([...tcpHeader(version), ...new TextEncoder().encode(hello(7))])]).reply,
        );
        assert.equal(seen.first, hello(7));
        assert.equal(seen.remote.transport === "tcp" && seen.remote.port, 51000);
      }
    }, { mode: "stream" });
  });

  test("a Unix socket listener trusts its peers (the file's mode says who connects)", T, async () => {
    const dir = await tempDir();
    try {
      await withServer(true, async ({ to, served }) => {
        const seen = parseSeen(await talk(to, [tcpHeader(2), hello()]).reply);
        assert.deepEqual(seen.remote, { transport: "tcp", hostname: "203.0.113.7", port: 51000 });
        assert.equal(seen.proxy?.via.transport, "unix");
        assert.equal(await talk(to, [hello(1)]).reply, "", "no header: closed (required)");
        assert.equal(served.length, 1);
      }, { config: { uds: join(dir.path, "proxy.sock") } });
    } finally {
      await dir.cleanup();
    }
  });
});

test("100 connections queued before the first accept() all pass, each with its own bytes", T, async () => {
  const before = canCountFds ? fdTargets() : undefined;
  const listener = withProxyProtocol(await createListener({ host: "127.0.0.1", port: 0 }), LOOPBACK);
  const clients = Array.from({ length: 100 }, (_, i) => talk(portOf(listener), [tcpHeader(2), hello(i)]));
  await Promise.all(clients.map((c) => c.connected));
  const served: Seen[] = [];
  const serving = serveSeen(listener, served);
  try {
    const seen = (await Promise.all(clients.map((c) => c.reply))).map(parseSeen);
    assert.deepEqual(seen.map((s) => s.first), clients.map((_, i) => hello(i)));
    assert.ok(seen.every((s) => s.remote.transport === "tcp" && s.remote.hostname === "203.0.113.7"));
  } finally {
    await listener.close();
    await serving;
  }
  if (before !== undefined) assert.deepEqual(await leakedFds(before), [], "no descriptor left open");
});

describe("the trust policy", () => {
  const NOT_US: ProxyProtocolOptions = { trusted: ["10.0.0.0/8", "::2"] };

  test("an untrusted source: a header closes the connection, so does no header (required)", T, async () => {
    await withServer(NOT_US, async ({ to, served }) => {
      assert.equal(await talk(to, [tcpHeader(2), hello()]).reply, "");
      assert.equal(await talk(to, [tcpHeader(1), hello()]).reply, "");
      assert.equal(await talk(to, [hello()]).reply, "");
      assert.equal(served.length, 0);
    });
  });

  test("a trusted source without a header is closed when required (the default)", T, async () => {
    await withServer(true, async ({ to, served }) => {
      assert.equal(await talk(to, ["GET / HTTP/1.1\r\n\r\n"]).reply, "");
      const seen = parseSeen(await talk(to, [tcpHeader(2), hello()]).reply);
      assert.equal(
        seen.remote.transport === "tcp" && seen.remote.hostname,
        "203.0.113.7",
        "127.0.0.1 trusted by default",
      );
      assert.equal(served.length, 1);
    });
  });

  test("required: false lets a connection without a header through with its own address and bytes", T, async () => {
    await withServer({ ...LOOPBACK, required: false }, async ({ to }) => {
      for (const first of ["PUT /x\n", "P\n", "\r\nGET\n", hello()]) {
        const client = talk(to, [first]);
        const seen = parseSeen(await client.reply);
        assert.deepEqual(seen.remote, { transport: "tcp", hostname: "127.0.0.1", port: await client.connected });
        assert.equal(seen.proxy, undefined);
        assert.equal(seen.first, first);
      }
      const seen = parseSeen(await talk(to, [tcpHeader(1), hello()]).reply);
      assert.equal(seen.remote.transport === "tcp" && seen.remote.hostname, "203.0.113.7", "a header still counts");
    });
  });

  test("trusted: 0.0.0.0/0 on an IPv4 listener admits every header and still refuses a missing one", T, async () => {
    await withServer({ trusted: ["0.0.0.0/0"] }, async ({ to, served }) => {
      const seen = parseSeen(await talk(to, [tcpHeader(2), hello()]).reply);
      assert.equal(seen.remote.transport === "tcp" && seen.remote.hostname, "203.0.113.7");
      assert.equal(await talk(to, [hello()]).reply, "");
      assert.equal(served.length, 1);
    });
  });

  test("required: false from an untrusted source: no header passes, a header closes", T, async () => {
    await withServer({ ...NOT_US, required: false }, async ({ to, served }) => {
      const seen = parseSeen(await talk(to, [hello()]).reply);
      assert.equal(seen.remote.transport === "tcp" && seen.remote.hostname, "127.0.0.1");
      assert.equal(await talk(to, [tcpHeader(2), hello()]).reply, "");
      assert.equal(await talk(to, [tcpHeader(1), hello()]).reply, "");
      assert.equal(served.length, 1);
    });
  });
});

const bad: [string, Uint8Array, boolean][] = [
  ["a truncated v1 header", new TextEncoder().encode("PROXY TCP4 203.0.113.7 192."), true],
  ["a truncated v2 header", tcpHeader(2).subarray(0, 20), true],
  ["a malformed v1 address", new TextEncoder().encode("PROXY TCP4 203.0.113 192.0.2.1 1 2\r\nhello\n"), false],
  ["a v1 line ended by LF alone", new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 1 2\nhello\n"), false],
  ["an oversized v1 line", new TextEncoder().encode(`PROXY TCP4 ${"1".repeat(200)}\r\n`), false],
  ["a wrong v2 signature (no header: required)", new Uint8Array([...SIG.slice(0, 11), 0x0b, 0x21, 0x11, 0, 12]), false],
  ["a v2 version 3", v2(0x31, 0x11, new Array(12).fill(1)), false],
  ["a v2 command 2", v2(0x22, 0x11, new Array(12).fill(1)), false],
  ["a v2 family 0x99", v2(0x21, 0x99, []), false],
  ["a v2 length shorter than its addresses", v2(0x21, 0x21, new Array(12).fill(1)), false],
  ["a v2 TLV past the end", v2(0x21, 0x11, [...new Array(12).fill(1), 0x02, 0x00, 0x09, 0x61]), false],
  [
    "a v2 header with a bad CRC32C",
    (() => {
      const h = buildProxyHeader({ version: 2, command: "local", transport: "unspec", tlvs: [] }, { crc32c: true });
      h[h.length - 1]! ^= 1;
      return h;
    })(),
    false,
  ],
];

describe("each bad header closes its own connection; the listener goes on serving", () => {
  for (const [name, bytes, end] of bad) {
    test(name, T, async () => {
      await withServer(LOOPBACK, async ({ to, served }) => {
        const wrong = talk(to, [bytes], { end });
        const right = talk(to, [tcpHeader(2), hello(1)]);
        assert.equal(await wrong.reply, "", "closed without a reply");
        assert.equal(parseSeen(await right.reply).first, hello(1));
        assert.equal(parseSeen(await talk(to, [tcpHeader(1), hello(2)]).reply).first, hello(2));
        assert.deepEqual(served.map((s) => s.first), [hello(1), hello(2)], "only the good ones were accepted");
      });
    });
  }
});

describe("time limits and the listener's life", () => {
  test("a slow header closes after timeoutMs, while another connection is served meanwhile", T, async () => {
    await withServer({ ...LOOPBACK, timeoutMs: 200 }, async ({ to, served }) => {
      const started = Date.now();
      const slow = talk(to, [tcpHeader(1).subarray(0, 12)]);
      const silent = talk(to, []);
      const right = parseSeen(await talk(to, [tcpHeader(2), hello(1)]).reply);
      assert.equal(right.first, hello(1));
      assert.ok(Date.now() - started < 200, "served before the slow one timed out");
      assert.equal(await slow.reply, "");
      assert.equal(await silent.reply, "");
      const took = Date.now() - started;
      assert.ok(took >= 190 && took < 3000, `closed after ${took} ms`);
      assert.equal(served.length, 1);
    });
  });

  test("close() closes the connections still reading a header, at once", T, async () => {
    let listener: Listener | undefined;
    let slow: ReturnType<typeof talk> | undefined;
    await withServer({ ...LOOPBACK, timeoutMs: 60_000 }, async (server) => {
      listener = server.listener;
      slow = talk(server.to, [tcpHeader(2).subarray(0, 5)]);
      await slow.connected;
      assert.equal(parseSeen(await talk(server.to, [tcpHeader(2), hello()]).reply).first, hello());
    });
    const closedBy = await Promise.race([slow!.reply, new Promise((r) => setTimeout(() => r("still open"), 5000))]);
    assert.equal(closedBy, "");
    await assert.rejects(listener!.accept(), (err) => err instanceof ListenError && err.code === "ECLOSED");
  });

  test("drain() serves a header that completes while it drains, then closes", T, async () => {
    await withServer(LOOPBACK, async ({ listener, to, served }) => {
      const header = tcpHeader(2);
      const late = talk(to, [header.subarray(0, 10)]);
      await late.connected;
      const draining = listener.drain({ idleMs: 20 });
      late.socket.write(header.subarray(10));
      late.socket.write(hello(3));
      assert.equal(parseSeen(await late.reply).first, hello(3));
      await draining;
      await until(() => served.length === 1);
      await assert.rejects(listener.accept(), ListenError);
    });
  });
});
