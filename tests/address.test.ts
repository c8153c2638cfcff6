// Addresses the way operators write them: strings, abstract sockets, inherited descriptors,
// systemd socket activation, localhost on both families, TCP+UDP pairs and retries.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstat, readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import process from "node:process";
import {
  capabilities,
  createListener,
  createListenerPair,
  createListenerPairs,
  createListeners,
  formatAddress,
  type ListenError,
  parseAddress,
  type ServerConfig,
} from "../mod.ts";
import { adapter, withAdapter } from "../src/_adapter.ts";
import { bindOnOnePort } from "../src/_bind.ts";
import { normalizeConfig } from "../src/_config.ts";
import { exchange, portOf, serveUpper, tempDir } from "./_helpers.ts";
import { projectFile } from "./_process.ts";
import { runtimeCommand } from "./_runtime_command.ts";
import { createSocket } from "node:dgram";

const T = { timeout: 30_000 };
const caps = capabilities();

describe("parseAddress", () => {
  const cases: [string, ServerConfig][] = [
    ["127.0.0.1:8000", { host: "127.0.0.1", port: 8000 }],
    [":8000", { host: "0.0.0.0", port: 8000 }],
    ["[::1]:8000", { host: "::1", port: 8000 }],
    ["[::]:0", { host: "::", port: 0 }],
    ["localhost:3000", { host: "localhost", port: 3000 }],
    ["tcp://example.com:443", { host: "example.com", port: 443 }],
    ["tcp://[fe80::1%eth0]:80", { host: "fe80::1%eth0", port: 80 }],
    ["unix:/run/app.sock", { uds: "/run/app.sock" }],
    ["unix:./app.sock", { uds: "./app.sock" }],
    ["unix:///run/app.sock", { uds: "/run/app.sock" }],
    ["/run/app.sock", { uds: "/run/app.sock" }],
    ["@name", { uds: "\0name" }],
    ["unix:@name", { uds: "\0name" }],
    ["fd://3", { fd: 3 }],
    ["sd-listen", { systemd: true }],
    ["sd-listen:web", { systemd: "web" }],
  ];
  for (const [text, config] of cases) {
    test(text, () => {
      assert.deepEqual(parseAddress(text), config);
      assert.deepEqual(parseAddress(formatAddress(config)), config, "round-trips");
    });
  }

  const bad = [
    "",
    "localhost",
    "127.0.0.1:",
    "127.0.0.1:65536",
    "::1:80",
    "[::1]80",
    "[]:80",
    "[127.0.0.1]:80",
    "[localhost]:80",
    "http://x:80",
    "fd://x",
    "unix:",
    "@",
    "sd-listen:",
    "a b:80",
  ];
  for (const text of bad) {
    test(`refuses ${JSON.stringify(text)}, quoting it`, () => {
      assert.throws(() => parseAddress(text), (err: Error) => {
        assert.ok(err instanceof RangeError);
        assert.ok(err.message.includes(JSON.stringify(text)), err.message);
        return true;
      });
    });
  }
  test("refuses what is not a string", () => {
    assert.throws(() => parseAddress(42 as unknown as string), TypeError);
  });
});

describe("address strings bind", () => {
  test("host:port, [::1]:port and tcp://", T, async () => {
    for (const text of ["127.0.0.1:0", "[::1]:0", "tcp://127.0.0.1:0"]) {
      const listener = await createListener(text);
      const serving = serveUpper(listener);
      const host = listener.addr.transport === "tcp" ? listener.addr.hostname : "";
      assert.equal(await exchange(portOf(listener), "s", host), "S");
      await listener.close();
      await serving;
    }
  });

  test("unix: with a relative path", T, async () => {
    const dir = await tempDir();
    try {
      const path = relative(process.cwd(), join(dir.path, "rel.sock"));
      assert.ok(!path.startsWith("/"));
      const listener = await createListener(`unix:${path}`);
      assert.deepEqual(listener.addr, { transport: "unix", path });
      const serving = serveUpper(listener);
      assert.equal(await exchange(join(dir.path, "rel.sock"), "r"), "R");
      await listener.close();
      await serving;
      assert.deepEqual(await readdir(dir.path), []);
    } finally {
      await dir.cleanup();
    }
  });
});

describe("abstract Unix sockets (@name)", () => {
  test(
    "listen without a file and refuse a second bind",
    { ...T, skip: caps.os !== "linux" && "Linux only" },
    async () => {
      const name = `polybind-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
      const listener = await createListener(`@${name}`);
      assert.deepEqual(listener.addr, { transport: "unix", path: `\0${name}` });
      const serving = serveUpper(listener);
      assert.equal(await exchange(`\0${name}`, "abstract"), "ABSTRACT");
      await assert.rejects(createListener(`@${name}`), { code: "EADDRINUSE" });
      await listener.close();
      await serving;
    },
  );

  test("are refused on other OSes", () => {
    assert.throws(() => normalizeConfig({ uds: "\0x" }, "darwin"), /exist only on Linux, not darwin/);
  });
});

/** Runs the fixture under systemd-socket-activate and talks to it through `connect`. */
async function activated(
  listen: string,
  fixtureArg: string,
  extra: string[],
  talk: () => Promise<string>,
): Promise<{ reply: string; output: string }> {
  const [command, args] = runtimeCommand(projectFile("tests/fixtures/listen_address"), [fixtureArg]);
  const child = spawn("systemd-socket-activate", ["-l", listen, ...extra, command, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (/Listening on/.test(output)) {
          clearInterval(check);
          resolve();
        }
      }, 20);
      child.once("exit", () => reject(new Error(output)));
    });
    const reply = await talk();
    return { reply, output };
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("close", resolve));
  }
}

async function freePort(): Promise<number> {
  const l = await createListener({ port: 0 });
  const port = portOf(l);
  await l.close();
  return port;
}

describe("socket activation and inherited descriptors", () => {
  test(
    "sd-listen over TCP, with systemd-socket-activate",
    T,
    async () => {
      const port = await freePort();
      const { reply, output } = await activated(`127.0.0.1:${port}`, "sd-listen", [], () => exchange(port, "sd"));
      assert.equal(reply, "SD", output);
      assert.match(output, new RegExp(`listening \\[\\{"transport":"tcp","hostname":"127.0.0.1","port":${port}\\}\\]`));
    },
  );

  test(
    "sd-listen:NAME picks the named socket; fd://3 adopts descriptor 3",
    T,
    async () => {
      const dir = await tempDir();
      try {
        const path = join(dir.path, "act.sock");
        const named = await activated(path, "sd-listen:web", ["--fdname=web"], () => exchange(path, "named"));
        assert.equal(named.reply, "NAMED", named.output);
        const fd = await activated(path, "fd://3", [], () => exchange(path, "fd"));
        assert.equal(fd.reply, "FD", fd.output);
        const wrongName = await activated(
          path,
          "sd-listen:admin",
          ["--fdname=web"],
          () => exchange(path, "x").catch(() => ""),
        );
        assert.match(wrongName.output, /failed .*"code":"ENOENT".*no socket of that name/);
      } finally {
        await dir.cleanup();
      }
    },
  );

  test("sockets passed to another process (LISTEN_PID) are ignored", T, async () => {
    const env = { ...process.env, LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "web" };
    const [command, args] = runtimeCommand(projectFile("tests/fixtures/listen_address"), ["sd-listen"]);
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    await new Promise((resolve) => child.once("close", resolve));
    assert.match(out, /failed .*"code":"ENOENT".*for process 1, not this one/);
  });

  test("without LISTEN_FDS, sd-listen says how to start the server", T, async () => {
    if (adapter().platform.env("LISTEN_FDS") !== undefined) return;
    await assert.rejects(createListener("sd-listen"), (err: ListenError) => {
      assert.equal(err.code, "ENOENT");
      return true;
    });
  });
});

describe("localhost and several addresses", () => {
  test("localhost accepts IPv4 and IPv6 clients on one port", T, async () => {
    const listener = await createListener("localhost:0");
    const hosts = listener.addrs.map((a) => (a.transport === "tcp" ? a.hostname : ""));
    assert.deepEqual([...hosts].sort(), ["127.0.0.1", "::1"]);
    assert.equal(new Set(listener.addrs.map((a) => a.transport === "tcp" && a.port)).size, 1);
    assert.deepEqual(listener.addr, listener.addrs[0]);
    const serving = serveUpper(listener);
    assert.equal(await exchange(portOf(listener), "four", "127.0.0.1"), "FOUR");
    assert.equal(await exchange(portOf(listener), "six", "::1"), "SIX");
    await listener.close();
    await serving;
  });

  test("a host resolving to several addresses gets one listener on all (workers too)", T, async () => {
    const real = adapter();
    const lookup = () => Promise.resolve(["127.0.0.1", "::1"]);
    await withAdapter({ ...real, platform: { ...real.platform, lookup } }, async () => {
      const listeners = await createListeners({ host: "example.test", port: 0 }, 2);
      for (const l of listeners) assert.equal(l.addrs.length, 2);
      const serving = listeners.map((l) => serveUpper(l));
      for (const host of ["127.0.0.1", "::1"]) assert.equal(await exchange(portOf(listeners[0]!), "x", host), "X");
      await Promise.all(listeners.map((l) => l.close()));
      await Promise.all(serving);
    });
  });
});

describe("TCP and UDP on one port (HTTP/3 pairs)", { skip: !caps.udp && "UDP needs --unstable-net here" }, () => {
  test("port 0: UDP joins the port TCP picked", T, async () => {
    const { tcp, udp } = await createListenerPair("127.0.0.1:0");
    try {
      assert.equal(portOf(tcp), udp.addr.port);
      const serving = serveUpper(tcp);
      assert.equal(await exchange(portOf(tcp), "h2"), "H2");
      const client = createSocket("udp4");
      const reply = new Promise<string>((resolve) => client.once("message", (m) => resolve(String(m))));
      client.send("h3", udp.addr.port, "127.0.0.1");
      const [data, from] = await udp.receive();
      await udp.send(data, from);
      assert.equal(await reply, "h3");
      client.close();
      await tcp.close();
      await serving;
    } finally {
      await tcp.close();
      await udp.close();
    }
  });

  test("with several workers: every pair on one port", T, async () => {
    const pairs = await createListenerPairs({ port: 0 }, 2);
    assert.equal(new Set(pairs.flatMap((p) => [portOf(p.tcp), p.udp.addr.port])).size, 1);
    await Promise.all(pairs.flatMap((p) => [p.tcp.close(), p.udp.close()]));
  });

  test("a fixed port whose UDP side is taken fails and leaves the TCP port free", T, async () => {
    // A port free for TCP whose UDP side another socket holds.
    const { tcp, udp: taken } = await createListenerPair("127.0.0.1:0");
    await tcp.close();
    const port = taken.addr.port;
    try {
      await assert.rejects(createListenerPair({ port }), { code: "EADDRINUSE" });
      const again = await createListener({ port });
      await again.close();
    } finally {
      await taken.close();
    }
  });
});

test("a port taken on a later step is retried on a fresh port when 0 was asked", async () => {
  let calls = 0;
  const closed: number[] = [];
  const sock = (port: number) => ({ port, close: () => Promise.resolve(void closed.push(port)) });
  const groups = await bindOnOnePort(0, [
    (port) => Promise.resolve({ sockets: [sock(port || 1000 + calls)], port: port || 1000 + calls }),
    () => {
      calls++;
      return calls < 3
        ? Promise.reject(Object.assign(new Error("taken"), { code: "EADDRINUSE" }))
        : Promise.resolve({ sockets: [sock(0)], port: 0 });
    },
  ]);
  assert.equal(groups.length, 2);
  assert.deepEqual(closed, [1000, 1001]);
});

describe("retry while the address is in use", () => {
  test("succeeds once the old server lets go", T, async () => {
    const old = await createListener({ port: 0 });
    const port = portOf(old);
    setTimeout(() => void old.close(), 300);
    const started = Date.now();
    await using fresh = await createListener({ port, retry: { attempts: 10, delayMs: 100 } });
    assert.equal(portOf(fresh), port);
    assert.ok(Date.now() - started >= 200);
  });

  test("fails fast by default, and after the last attempt", T, async () => {
    await using held = await createListener({ port: 0 });
    const port = portOf(held);
    await assert.rejects(createListener({ port }), { code: "EADDRINUSE" });
    await assert.rejects(createListener({ port, retry: { attempts: 3, delayMs: 10 } }), { code: "EADDRINUSE" });
    assert.throws(() => normalizeConfig({ retry: { attempts: 0, delayMs: 1 } }, "linux"), /'retry.attempts'/);
  });
});

test("a relative socket file is cleaned up", T, async () => {
  const dir = await tempDir();
  try {
    const l = await createListener({ uds: join(dir.path, "c.sock") });
    await l.close();
    await assert.rejects(lstat(join(dir.path, "c.sock")), { code: "ENOENT" });
  } finally {
    await dir.cleanup();
  }
});
