// Faults: permission, binds failing part-way, descriptor exhaustion, clients resetting before
// accept, closing one of several reuseport listeners under load; and the security guarantees of
// Unix socket files (mode, and stale-socket removal that survives files swapped under it).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { connect, type Socket } from "node:net";
import process from "node:process";
import {
  capabilities,
  cleanupUnixSocket,
  createListener,
  createListeners,
  createUdpListeners,
  ListenError,
} from "../mod.ts";
import { type Adapter, adapter, type RawDatagram, withAdapter as runWith } from "../src/_adapter.ts";
import {
  exchange,
  leaveStaleSocket,
  openClients,
  otherProcessServer,
  serveLines,
  serveUpper,
  tempDir,
} from "./_helpers.ts";
import { canCountFds, fdTargets, leakedFds, openedSince, openFds, spawnScript } from "./_fd.ts";

const T = { timeout: 30_000 };
const caps = capabilities();

/** Prints a measured figure with the test output. */
function figure(text: string): void {
  console.log(`[figure] ${caps.runtime} ${caps.version}: ${text}`);
}

/** Runs `fn` with the adapter's primitives replaced by `patch`, for the calls `fn` makes alone. */
function withAdapter<R>(patch: (real: Adapter) => Partial<Adapter>, fn: () => Promise<R>): Promise<R> {
  const real = adapter();
  return runWith({ ...real, ...patch(real) }, fn);
}

/** Checks that as many descriptors are open as in `before`, once closes have settled. */
async function sameFds(before: Map<number, string>): Promise<void> {
  if (!canCountFds) return;
  assert.deepEqual(await leakedFds(before), [], "no descriptor left open");
}

/** Sends `ping <i>\n` and resolves with the reply, or with `error <code>` / `timeout`. */
function ping(port: number, i: number, ms = 5000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let reply = "";
    const timer = setTimeout(() => done("timeout"), ms);
    const done = (result: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.on("data", (chunk: Buffer) => void (reply += chunk.toString()));
    socket.on("error", (err: { code?: string }) => done(`error ${err.code}`));
    socket.on("close", () => done(reply === "" ? "closed" : reply));
    socket.write(`ping ${i}\n`);
  });
}

/** net.ipv4.tcp_migrate_req: "1" when Linux moves a closed reuseport socket's queue to the others. */
function migrateReq(): string {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim();
  } catch {
    return "absent";
  }
}

/** The lowest port an unprivileged user may bind (Linux sysctl; 1024 elsewhere). */
function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"));
  } catch {
    return 1024;
  }
}

describe("permission", () => {
  const start = unprivilegedPortStart();
  test("a port below 1024 as an unprivileged user gives the EACCES hint", {
    ...T,
    skip: start === 0 && "every port is unprivileged on this machine",
  }, async () => {
    const port = Math.min(80, start - 1);
    const child = spawnScript(
      `
const report = (err) => ({ name: err.name, code: err.code, message: err.message, address: err.address });
const udp = lib.capabilities().udp; // probed first: Bun keeps a second event loop after its probe
const before = fdList();
const out = { uid: process.getuid(), before };
try { await (await lib.createListener({ host: "127.0.0.1", port: ${port} })).close(); out.tcp = { name: "none" }; }
catch (err) { out.tcp = report(err); }
if (udp) {
  try { await (await lib.createUdpListener({ host: "127.0.0.1", port: ${port} })).close(); out.udp = { name: "none" }; }
  catch (err) { out.udp = report(err); }
}
say({ ...out, after: await settledFdList(before) });`,
      { unprivileged: true },
    );
    const result = await child.next();
    await child.end();
    assert.notEqual(result.uid, 0, "the child runs unprivileged");
    const expected = {
      name: "ListenError",
      code: "EACCES",
      address: `127.0.0.1:${port}`,
      message: `Permission denied binding to 127.0.0.1:${port}. Try a port > 1024 or run with elevated permissions.`,
    };
    assert.deepEqual(result.tcp, expected);
    if (caps.udp) assert.deepEqual(result.udp, expected);
    assert.deepEqual(openedSince(result.before, result.after), [], "no descriptor left open");
  });
});

describe("a bind failing part-way closes every socket already bound", () => {
  test("TCP, failure injected through the adapter at each step", T, async () => {
    for (let failAt = 1; failAt <= 4; failAt++) {
      const fds = canCountFds ? fdTargets() : new Map();
      const bound: number[] = [];
      let closed = 0;
      let calls = 0;
      await withAdapter((real) => ({
        os: "linux",
        reusePortBinds: () => true,
        probeReusePort: () => Promise.resolve(true),
        async listenTcp(opts) {
          if (++calls === failAt) throw Object.assign(new Error("injected"), { code: "EADDRINUSE" });
          // Where the runtime cannot really share a port, each bind gets its own.
          const share = real.reusePortBinds("tcp");
          const raw = await real.listenTcp({ ...opts, port: share ? opts.port : 0, reusePort: share });
          bound.push(raw.addr.port);
          return { ...raw, close: () => (closed++, raw.close()) };
        },
      }), async () => {
        await assert.rejects(createListeners({ port: 0 }, 4), (err: ListenError) => {
          assert.ok(err instanceof ListenError);
          assert.equal(err.code, "EADDRINUSE");
          assert.match(err.message, /already in use/);
          return true;
        });
      });
      assert.equal(bound.length, failAt - 1);
      assert.equal(closed, failAt - 1, `failing at bind ${failAt}: every bound socket closed`);
      for (const port of new Set(bound)) {
        await assert.rejects(ping(port, 0).then((r) => r.startsWith("error") ? Promise.reject(r) : r));
      }
      await sameFds(fds);
    }
  });

  test("UDP, failure injected through the adapter at each step", T, async () => {
    for (let failAt = 1; failAt <= 4; failAt++) {
      const fds = canCountFds ? fdTargets() : new Map();
      let bound = 0;
      let closed = 0;
      let calls = 0;
      await withAdapter((real) => ({
        os: "linux",
        udp: true,
        reusePortBinds: () => true,
        probeReusePort: () => Promise.resolve(true),
        async listenUdp(opts) {
          if (++calls === failAt) throw Object.assign(new Error("injected"), { code: "EMFILE" });
          bound++;
          if (!real.udp) {
            // No UDP here (Deno without --unstable-net): a stand-in socket.
            const fake: RawDatagram = {
              addr: { transport: "udp", hostname: opts.hostname, port: 40000 },
              native: null,
              receive: () => new Promise(() => {}),
              send: () => Promise.resolve(0),
              close: () => (closed++, Promise.resolve()),
            };
            return fake;
          }
          const share = real.reusePortBinds("udp");
          const raw = await real.listenUdp({ ...opts, port: share ? opts.port : 0, reusePort: share });
          return { ...raw, close: () => (closed++, raw.close()) };
        },
      }), async () => {
        await assert.rejects(createUdpListeners({ port: 0 }, 4), (err: ListenError) => {
          assert.ok(err instanceof ListenError, String(err));
          assert.equal(err.code, "EMFILE");
          return true;
        });
      });
      assert.equal(bound, failAt - 1);
      assert.equal(closed, failAt - 1, `failing at bind ${failAt}: every bound socket closed`);
      await sameFds(fds);
    }
  });

  test("for real: the descriptor limit is reached after some binds", {
    ...T,
    skip: !caps.reusePort.tcp && !caps.reusePort.udp && "one shared socket here: nothing to fail part-way",
  }, async () => {
    const limit = 64;
    const child = spawnScript(
      `
const { openSync, closeSync } = await import("node:fs");
const caps = lib.capabilities();
const real = adapterMod.adapter();
let bound = 0;
adapterMod.useAdapter({ ...real,
  listenTcp: async (o) => { const r = await real.listenTcp(o); bound++; return r; },
  listenUdp: async (o) => { const r = await real.listenUdp(o); bound++; return r; } });
const out = {};
for (const kind of ["tcp", "udp"]) {
  if (!caps.reusePort[kind]) continue;
  bound = 0;
  const fillers = [];
  const before = fdList();
  while (fds() < ${limit} - 3) fillers.push(openSync("/dev/null", "r"));
  let error = { name: "none" };
  try {
    const made = await (kind === "tcp" ? lib.createListeners({ port: 0 }, 8) : lib.createUdpListeners({ port: 0 }, 8));
    await Promise.all(made.map((l) => l.close()));
  } catch (err) {
    error = { name: err.name, code: err.code, address: err.address, message: err.message };
  }
  for (const f of fillers) closeSync(f);
  const after = await settledFdList(before);
  let rebound = false;
  const port = Number(String(error.address).split(":").pop());
  try {
    const again = await (kind === "tcp" ? lib.createListener({ port }) : lib.createUdpListener({ port }));
    rebound = true;
    await again.close();
  } catch {}
  out[kind] = { error, bound, before, after, rebound };
}
say(out);`,
      { nofile: limit },
    );
    const result = await child.next() as Record<string, Record<string, unknown>>;
    await child.end();
    for (const [kind, r] of Object.entries(result)) {
      const [before, after] = [(r.before as string[]).length, (r.after as string[]).length];
      figure(`${kind}: ${r.bound} sockets bound before EMFILE; descriptors ${before} before, ${after} after`);
      assert.equal((r.error as { name: string }).name, "ListenError", `${kind}: ${JSON.stringify(r.error)}`);
      // Bun.listen's error carries no errno ("Failed to listen at 127.0.0.1"): polybind cannot name it.
      const bunTcp = caps.runtime === "bun" && kind === "tcp";
      assert.equal((r.error as { code: string }).code, bunTcp ? "EUNKNOWN" : "EMFILE");
      assert.ok((r.bound as number) >= 1 && (r.bound as number) < 8, `${kind}: failed part-way (${r.bound} bound)`);
      assert.deepEqual(openedSince(r.before, r.after), [], `${kind}: every socket already bound was closed`);
      assert.equal(r.rebound, true, `${kind}: the port is free again`);
    }
  });

  test("for real: a second socket cannot share the port where the runtime cannot share", {
    ...T,
    skip: caps.reusePort.tcp && caps.reusePort.udp && "this runtime shares ports for real",
  }, async () => {
    const fds = canCountFds ? fdTargets() : new Map();
    await withAdapter((real) => ({
      os: "linux",
      reusePortBinds: () => true,
      probeReusePort: () => Promise.resolve(true),
      // Deno without --unstable-net exits on reusePort: ask for it only where it exists.
      listenTcp: (o) => real.listenTcp({ ...o, reusePort: o.reusePort && real.reusePortBinds("tcp") }),
    }), async () => {
      if (!caps.reusePort.tcp) await assert.rejects(createListeners({ port: 0 }, 3), { code: "EADDRINUSE" });
      if (!caps.reusePort.udp && caps.udp) {
        await assert.rejects(createUdpListeners({ port: 0 }, 3), { code: "EADDRINUSE" });
      }
    });
    await sameFds(fds);
  });
});

describe("descriptor exhaustion", () => {
  test("a flood beyond the descriptor limit: no crash, no busy loop, normal service after", T, async () => {
    const limit = 96;
    const child = spawnScript(
      `
const listener = await lib.createListener({ host: "127.0.0.1", port: 0 });
let accepted = 0;
let loop = "running";
(async () => {
  try {
    for await (const conn of listener) {
      accepted++;
      (async () => {
        try {
          const buf = new Uint8Array(256);
          let text = "";
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            text += new TextDecoder().decode(buf.subarray(0, n));
            if (text.includes("\\n")) break;
          }
          await conn.write(new TextEncoder().encode("OK " + text));
        } catch {} finally { conn.close(); }
      })();
    }
    loop = "ended";
  } catch (err) {
    loop = "threw " + err.code + ": " + err.message;
  }
})();
say({ port: listener.addr.port, fds: fds() });
for (let r = await nextLine(); !r.done; r = await nextLine()) say({ accepted, loop });
await listener.close();
say({ accepted, loop });`,
      { nofile: limit },
    );
    const clients: Socket[] = [];
    try {
      const { port } = await child.next() as { port: number };
      const flood = 4 * limit;
      for (let i = 0; i < flood; i++) {
        const socket = connect({ port, host: "127.0.0.1" });
        socket.on("error", () => {});
        socket.resume();
        clients.push(socket);
      }
      // The flood has filled the descriptor table once the child holds its limit.
      for (const end = Date.now() + 10_000; openFds(child.pid) < limit - 8 && Date.now() < end;) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const cpu0 = child.cpuTicks();
      const t0 = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const cpu = (child.cpuTicks() - cpu0) / ((Date.now() - t0) / 10);
      child.send("status");
      const open = openFds(child.pid); // counted from here: the child has no descriptor left to count with
      const during = await child.next() as { accepted: number; loop: string };
      figure(`flood of ${flood} at a limit of ${limit}: ${open} descriptors open, CPU ${cpu.toFixed(1)}%`);
      assert.ok(open >= limit - 8, `the limit was reached (${open} open)`);
      assert.ok(cpu < 50, `no busy loop while descriptors are exhausted: ${cpu.toFixed(1)}% CPU`);
      assert.equal(during.loop, "running", "the accept loop survives the flood");
      // No wait: each ping waits up to 3 s while the child frees the flood's descriptors.
      for (const socket of clients.splice(0)) socket.destroy();
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => ping(port, i, 3000)));
      assert.deepEqual(replies, replies.map((_, i) => `OK ping ${i}\n`), "serves normally once the flood ends");
      child.send("status");
      const after = await child.next() as { loop: string };
      assert.equal(after.loop, "running", "the accept loop is alive");
    } finally {
      for (const socket of clients) socket.destroy();
      const { code, stderr } = await child.end();
      assert.doesNotMatch(stderr, /panicked|Uncaught|Error:/, stderr);
      assert.equal(code, 0, stderr);
    }
  });
});

test("clients that reset before being accepted do not disturb the accept loop", T, async () => {
  const fds = canCountFds ? fdTargets() : new Map();
  const listener = await createListener({ port: 0 });
  const port = (listener.addr as { port: number }).port;
  const resets = 20;
  // node:net's resetAndDestroy sends an RST; a Node.js child is the same on every runtime.
  const code =
    `const net=require("net");let n=0;for(let i=0;i<${resets};i++){const s=net.connect(${port},"127.0.0.1",` +
    `()=>{s.resetAndDestroy();if(++n===${resets})setTimeout(()=>process.exit(0),100)});s.on("error",()=>{})}`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn("node", ["-e", code], { stdio: "ignore" });
    child.once("exit", (status) => (status === 0 ? resolve() : reject(new Error(`resetter exited ${status}`))));
  });
  const served = { count: 0, errors: 0 };
  let loopError: unknown;
  const serving = serveLines(listener, served).catch((err) => void (loopError = err));
  const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => ping(port, i, 3000)));
  await listener.close();
  await serving;
  assert.equal(loopError, undefined, `the accept loop threw: ${loopError}`);
  assert.deepEqual(replies, replies.map((_, i) => `OK ping ${i}\n`));
  figure(`${resets} reset clients: ${served.count - 5} of them reached accept()`);
  await sameFds(fds);
});

describe("closing one of several listeners under load", () => {
  test("measures the queued connections dropped; shared views drop none", T, async () => {
    const listeners = await createListeners({ port: 0 }, 4);
    const port = (listeners[0]!.addr as { port: number }).port;
    const serving = listeners.slice(1).map((l) => serveLines(l));
    const n = 200;
    // Every client has connected once openClients resolves: a quarter of them queue on listener 0.
    const replies = await openClients(port, n, (socket, i) => socket.write(`ping ${i}\n`));
    await listeners[0]!.close(); // nobody accepted on this one: its queue is what is lost
    const results = await Promise.all(replies);
    const answered = results.filter((r) => r.startsWith("OK")).length;
    const dropped = n - answered;
    figure(`closing 1 of 4 ${caps.reusePort.tcp ? "reuseport" : "shared"} listeners: ${dropped} of ${n} dropped`);
    assert.deepEqual(results.filter((r) => !r.startsWith("OK") && !/^(closed|error ECONNRESET)$/.test(r)), []);
    if (!caps.reusePort.tcp) assert.equal(dropped, 0, "closing a shared view drops nothing");
    else if (migrateReq() === "1") assert.equal(dropped, 0, "tcp_migrate_req=1 moves the queue to the others");
    else assert.ok(dropped > 0 && dropped < n / 2, `Linux drops that listener's queue: ${dropped}`);
    for (let i = 0; i < 20; i++) assert.equal(await ping(port, i), `OK ping ${i}\n`, "the others keep serving");
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(serving);
  });
});

describe("security of Unix socket files", () => {
  test("never world-writable by default, even with umask 0 and before the mode is set", T, async () => {
    const dir = await tempDir();
    const old = process.umask(0);
    try {
      // A path so long that no temporary sibling name fits: the socket is bound in place.
      const deep = join(dir.path, "d".repeat(100 - dir.path.length - 1));
      await mkdir(deep);
      for (const path of [join(dir.path, "app.sock"), join(deep, "a")]) {
        const seen: number[] = [];
        await withAdapter((real) => ({
          async listenUnix(opts) {
            const raw = await real.listenUnix(opts);
            // What others can reach: nothing while the socket sits in a folder only we can enter.
            const folder = (await lstat(dirname(opts.path))).mode & 0o777;
            seen.push(folder === 0o700 && opts.path !== path ? 0 : (await lstat(opts.path)).mode & 0o777);
            return raw;
          },
        }), async () => {
          const listener = await createListener({ uds: path });
          assert.equal((await lstat(path)).mode & 0o777, 0o660);
          await listener.close();
        });
        const modes = seen.map((m) => m.toString(8)).join(", ");
        assert.ok(seen.every((m) => (m & 0o007) === 0), `${path} was bound with mode ${modes} before its chmod`);
      }
    } finally {
      process.umask(old);
      await dir.cleanup();
    }
  });

  test("udsMode widens or narrows the mode on purpose", T, async () => {
    const dir = await tempDir();
    try {
      for (const mode of [0o666, 0o777, 0o600, 0o000]) {
        const path = join(dir.path, `m${mode.toString(8)}.sock`);
        await using _listener = await createListener({ uds: path, udsMode: mode });
        assert.equal((await lstat(path)).mode & 0o777, mode);
      }
    } finally {
      await dir.cleanup();
    }
  });

  test("another user cannot join a reuseport group", {
    ...T,
    skip: (!caps.reusePort.tcp || process.getuid?.() !== 0) && "needs real reuseport and root to switch users",
  }, async () => {
    const listeners = await createListeners({ port: 0 }, 2);
    const port = (listeners[0]!.addr as { port: number }).port;
    const child = spawnScript(
      `
try { const ls = await lib.createListeners({ port: ${port} }, 2); say({ joined: true }); await Promise.all(ls.map((l) => l.close())); }
catch (err) { say({ code: err.code }); }`,
      { unprivileged: true },
    );
    const result = await child.next();
    await child.end();
    assert.deepEqual(result, { code: "EADDRINUSE" });
    const serving = listeners.map((l) => serveUpper(l));
    assert.equal(await exchange(port, "mine"), "MINE");
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(serving);
  });

  /** Ways to swap something in where a socket was, with a check that it is intact after. */
  type Swap = (at: string, dir: string, later: (() => Promise<void>)[]) => Promise<() => Promise<void>>;
  const swaps: [string, string, Swap][] = [
    ["a regular file", "EEXIST", async (at) => {
      await writeFile(at, "swapped in");
      return async () => assert.equal(await readFile(at, "utf8"), "swapped in");
    }],
    ["a symlink to a file", "EEXIST", async (at, dir) => {
      await writeFile(join(dir, "victim"), "victim");
      await symlink(join(dir, "victim"), at);
      return async () => {
        assert.equal(await readlink(at), join(dir, "victim"));
        assert.equal(await readFile(join(dir, "victim"), "utf8"), "victim");
      };
    }],
    ["a directory", "EEXIST", async (at) => {
      await mkdir(at);
      await writeFile(join(at, "inner"), "inner");
      return async () => assert.equal(await readFile(join(at, "inner"), "utf8"), "inner");
    }],
    ["a live socket of another process", "EADDRINUSE", async (at, dir, later) => {
      const other = await otherProcessServer(join(dir, "other.sock"));
      later.push(() => other.kill());
      await rename(join(dir, "other.sock"), at);
      return async () => assert.equal(await exchange(at, "x"), "other");
    }],
    ["a symlink to a live socket", "EEXIST", async (at, dir, later) => {
      const other = await otherProcessServer(join(dir, "other.sock"));
      later.push(() => other.kill());
      await symlink(join(dir, "other.sock"), at);
      return async () => assert.equal(await exchange(at, "x"), "other");
    }],
  ];

  for (const [what, code, swapIn] of swaps) {
    test(`removing a stale socket keeps ${what} swapped in between the check and the removal`, T, async () => {
      for (const call of ["createListener", "cleanupUnixSocket"] as const) {
        const dir = await tempDir();
        const later: (() => Promise<void>)[] = [];
        try {
          const path = join(dir.path, "app.sock");
          await leaveStaleSocket(path);
          let check: (() => Promise<void>) | undefined;
          await withAdapter((real) => ({
            platform: {
              ...real.platform,
              fs: {
                ...real.platform.fs,
                async rename(from: string, to: string) {
                  if (check === undefined && from === path) {
                    await rm(path);
                    check = await swapIn(path, dir.path, later);
                  }
                  return await real.platform.fs.rename(from, to);
                },
              },
            },
          }), async () => {
            if (call === "cleanupUnixSocket") return await cleanupUnixSocket({ uds: path });
            const made = await createListener({ uds: path }).catch((err: Error) => err);
            if (!(made instanceof Error)) await made.close();
            assert.ok(made instanceof Error, `createListener bound ${path} over ${what}`);
            assert.equal((made as ListenError).code, code);
          });
          assert.ok(check, "the swap happened");
          await check();
          const left = (await readdir(dir.path)).filter((name) => /\.(stale|pb)$/.test(name));
          assert.deepEqual(left, [], "nothing is left aside");
        } finally {
          for (const undo of later) await undo();
          await dir.cleanup();
        }
      }
    });
  }

  test("closing keeps a symlink or a directory swapped in for its own socket", T, async () => {
    for (const [what, , swapIn] of swaps.slice(1, 3)) {
      const dir = await tempDir();
      try {
        const path = join(dir.path, "own.sock");
        const listener = await createListener({ uds: path });
        await rm(path);
        const check = await swapIn(path, dir.path, []);
        await listener.close();
        await check();
        assert.ok((await lstat(path)).isSymbolicLink() || (await lstat(path)).isDirectory(), what);
      } finally {
        await dir.cleanup();
      }
    }
  });

  test("a symlink to a stale socket is neither followed nor removed", T, async () => {
    const dir = await tempDir();
    try {
      const stale = join(dir.path, "stale.sock");
      const link = join(dir.path, "link.sock");
      await leaveStaleSocket(stale);
      await symlink(stale, link);
      await assert.rejects(createListener({ uds: link }), { code: "EEXIST" });
      await cleanupUnixSocket({ uds: link });
      assert.equal(await readlink(link), stale);
      assert.ok((await lstat(stale)).isSocket());
    } finally {
      await dir.cleanup();
    }
  });
});
