// A lent socket served by the runtime's own fetch server (adapters/_adopt.ts): the /proc and
// sockaddr parsers without sockets; then, on Deno and Bun, the adapter's adoptFetchServer on a
// socket bound here (served, its throwaway gone, a second server taking over as a reload's
// does), its refusals (nothing changed), a worker's slot on a lent socket (the runtime's own
// server, or node:http where adoption is refused), and supervise() with lent sockets.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AdoptLibc } from "../adapters/_adopt_libc.ts";
import { parseSockaddr } from "../adapters/_adopt_libc.ts";
import { parseEpollInfo } from "../adapters/_proc_self.ts";
import { type Adapter, adapter, type FetchServer, type FetchServerAdopt, withAdapter } from "../src/_adapter.ts";
import { CONTEXT_KEY } from "../src/_context.ts";
import { Slot } from "../src/_slot.ts";
import { FDS_VARIABLE } from "../src/workers.ts";
import { capabilities, planListeners, preparePlan, supervise } from "../mod.ts";
import { fdTargets } from "./_fd.ts";

const T = { timeout: 30_000 };
const a = adapter();
const canAdopt = a.adoptFetchServer !== undefined && a.share !== undefined && a.os === "linux";

/** GET on a fresh connection: status, headers and body. */
function get(
  port: number,
  host = "127.0.0.1",
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    // Kept alive, as a browser asks (node:http then names its timeout), and closed once answered.
    const headers = { connection: "keep-alive" };
    const req = request({ host, port, path: "/", agent: false, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** GET over a Unix socket: the body. */
function getUnix(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: "/", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Inodes of the TCP sockets in LISTEN state that this process holds (Linux). */
function listeningHere(): Set<number> {
  const mine = new Set<number>();
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${name}`));
      if (m) mine.add(Number(m[1]));
    } catch {
      // Closed meanwhile.
    }
  }
  const listening = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const row of readFileSync(file, "utf8").split("\n").slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f[3] === "0A" && mine.has(Number(f[9]))) listening.add(Number(f[9]));
    }
  }
  return listening;
}

/** A socket bound here (not listening) the way a primary lends one: its descriptor, port and close. */
async function lendable(): Promise<{ fd: number; port: number; close(): Promise<void> }> {
  const socket = await a.share!.bind({ hostname: "127.0.0.1", port: 0 });
  if (socket.addr.transport !== "tcp" || socket.fd === undefined) throw new Error("no TCP descriptor");
  return { fd: socket.fd, port: socket.addr.port, close: () => socket.close() };
}

/** The inode of socket descriptor `fd`. */
function inodeOf(fd: number): number {
  return Number(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))![1]);
}

/**
 * The descriptors of socket `ino` here, but `except` (a lent socket's `fd`: on Deno a copy that
 * its process keeps, as a primary does).
 */
function copiesOf(ino: number, except = -1): number[] {
  return [...fdTargets()].filter(([fd, to]) => fd !== except && to === `socket:[${ino}]`).map(([fd]) => fd);
}

/** Resolves once `done()` holds (closes settle on a later tick); false if it still does not after `ms`. */
async function until(done: () => boolean, ms = 2_000): Promise<boolean> {
  for (const end = Date.now() + ms; !done(); await new Promise((resolve) => setTimeout(resolve, 10))) {
    if (Date.now() >= end) return false;
  }
  return true;
}

/** This runtime's adoptFetchServer with the C library `wrap` makes of the real one (Deno, Bun). */
async function adoptWith(wrap: (libc: AdoptLibc) => AdoptLibc): Promise<FetchServerAdopt> {
  if (capabilities().runtime === "deno") return (await import("../adapters/_adopt_deno.ts")).denoAdoptWith(wrap);
  return (await import("../adapters/_adopt_bun.ts")).bunAdoptWith(wrap);
}

describe("the parsers adoption reads /proc with", () => {
  test("a sockaddr: the port of IPv4 and IPv6, the path of a Unix socket", () => {
    assert.equal(parseSockaddr(new Uint8Array([2, 0, 0x1f, 0x90, 127, 0, 0, 1]), 16).port, 8080);
    assert.equal(parseSockaddr(new Uint8Array([10, 0, 0, 80, ...new Array(24).fill(0)]), 28).port, 80);
    const path = new TextEncoder().encode("/tmp/s.sock");
    const unix = parseSockaddr(new Uint8Array([1, 0, ...path, 0, 0, 0]), 2 + path.length + 1);
    assert.deepEqual(unix, { family: 1, port: 0, path: "/tmp/s.sock" });
  });

  test("an epoll instance's fdinfo: each registration, other lines left out", () => {
    const text = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n" +
      "tfd:       21 events: 8000201d data:     55da29abc700  pos:0 ino:281df71 sdev:9\n" +
      "tfd:        4 events:       19 data:                0  pos:0 ino:40f sdev:10\n";
    assert.deepEqual(parseEpollInfo(text), [
      { fd: 21, events: 0x8000201d, data: 0x55da29abc700n, ino: 0x281df71 },
      { fd: 4, events: 0x19, data: 0n, ino: 0x40f },
    ]);
    assert.deepEqual(parseEpollInfo("tfd: x events: 1\n"), []);
  });
});

describe("adoptFetchServer: the runtime's own server on a lent socket", { skip: !canAdopt }, () => {
  test(
    "serves it; the throwaway socket is gone; a second server takes over once the first stops accepting",
    T,
    async () => {
      const before = listeningHere();
      const lent = await lendable();
      const ino = inodeOf(lent.fd);
      const servers: FetchServer[] = [];
      try {
        const first = await a.adoptFetchServer!(
          { fd: lent.fd, backlog: 511, owned: false },
          {},
          () => new Response("first"),
        );
        assert.notEqual(typeof first, "string", String(first));
        servers.push(first as FetchServer);
        assert.equal((await get(lent.port)).body, "first");
        // Nothing else listens here but the lent socket: the throwaway closed as it was replaced.
        const now = listeningHere();
        assert.equal(now.size, before.size + 1, `${[...now]} vs ${[...before]}`);
        await (first as FetchServer).stopAccepting();
        const second = await a.adoptFetchServer!(
          { fd: lent.fd, backlog: 511, owned: false },
          {},
          () => new Response("second"),
        );
        assert.notEqual(typeof second, "string", String(second));
        servers.push(second as FetchServer);
        for (let i = 0; i < 5; i++) assert.equal((await get(lent.port)).body, "second");
      } finally {
        for (const server of servers) await server.close();
        await lent.close();
        // The servers' own copies close as they stop.
        assert.ok(await until(() => copiesOf(ino, lent.fd).length === 0), `still open: ${copiesOf(ino, lent.fd)}`);
      }
    },
  );

  test("serves a lent Unix socket; its throwaway folder is gone", T, async () => {
    const dir = mkdtempSync(join(tmpdir(), "polybind-adopt-"));
    const path = join(dir, "lent.sock");
    const socket = await a.share!.bind({ path });
    const ino = inodeOf(socket.fd!);
    // A throwaway folder holds one socket, "s": none left of those made since.
    const before = new Set(readdirSync(tmpdir()));
    const throwaways = () =>
      readdirSync(tmpdir()).filter((n) =>
        !before.has(n) && n.startsWith("polybind-") && existsSync(join(tmpdir(), n, "s"))
      );
    let server: FetchServer | undefined;
    try {
      const served = await a.adoptFetchServer!(
        { fd: socket.fd!, backlog: 511, owned: false },
        {},
        (_request, info) => new Response(`unix ${info.remoteAddr.transport}`),
      );
      assert.notEqual(typeof served, "string", String(served));
      server = served as FetchServer;
      assert.equal(await getUnix(path), "unix unix");
      assert.deepEqual(throwaways(), []);
    } finally {
      await server?.close();
      await socket.close();
      rmSync(dir, { recursive: true, force: true });
      assert.ok(await until(() => copiesOf(ino, socket.fd!).length === 0), `still open: ${copiesOf(ino, socket.fd!)}`);
    }
  });

  test("the adopted descriptor is closed on exec; a socket already served here is refused", T, async () => {
    const lent = await lendable();
    const ino = inodeOf(lent.fd);
    const own = copiesOf(ino, lent.fd);
    let server: FetchServer | undefined;
    try {
      const served = await a.adoptFetchServer!(
        { fd: lent.fd, backlog: 511, owned: false },
        {},
        () => new Response("one"),
      );
      assert.notEqual(typeof served, "string", String(served));
      server = served as FetchServer;
      // The server's descriptor (dup3 with O_CLOEXEC): a child the app spawns does not inherit it.
      const copies = copiesOf(ino, lent.fd).filter((fd) => !own.includes(fd));
      assert.equal(copies.length, 1, `${copies}`);
      const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${copies[0]}`, "utf8"))![1]!;
      assert.notEqual(parseInt(flags, 8) & 0o2000000, 0, `flags ${flags}`);
      const again = await a.adoptFetchServer!(
        { fd: lent.fd, backlog: 511, owned: false },
        {},
        () => new Response("two"),
      );
      assert.match(String(again), /already served in this process/);
      assert.equal((await get(lent.port)).body, "one");
    } finally {
      await server?.close();
      await lent.close();
      assert.ok(await until(() => copiesOf(ino, lent.fd).length === 0), `still open: ${copiesOf(ino, lent.fd)}`);
    }
  });

  test(
    "a socket lent to this process's threads is adopted twice; the second serves after the first stops",
    T,
    async () => {
      const lent = await lendable();
      const ino = inodeOf(lent.fd);
      const servers: FetchServer[] = [];
      try {
        for (const body of ["one", "two"]) {
          const served = await a.adoptFetchServer!(
            { fd: lent.fd, backlog: 511, owned: false, sharedHere: true },
            {},
            () => new Response(body),
          );
          assert.notEqual(typeof served, "string", String(served));
          servers.push(served as FetchServer);
        }
        // As a generation replaced: the first stops accepting, finishes, and closes its copy.
        await servers[0]!.stopAccepting();
        await (servers[0]!.finish ? servers[0]!.finish() : servers[0]!.close());
        for (let i = 0; i < 5; i++) assert.equal((await get(lent.port)).body, "two");
      } finally {
        for (const server of servers) await server.close();
        await lent.close();
        assert.ok(await until(() => copiesOf(ino, lent.fd).length === 0), `still open: ${copiesOf(ino, lent.fd)}`);
      }
    },
  );

  const faults: [string, (libc: AdoptLibc) => Partial<AdoptLibc>, RegExp][] = [
    ["listen", () => ({ listen: () => -1 }), /cannot listen \(EINVAL\)/],
    ["dup3", () => ({ dup3: () => -1 }), /dup3 .* failed \(EINVAL\)/],
    ["epoll_ctl", () => ({ epoll_ctl: () => -1 }), /epoll_ctl refused .* \(EINVAL\)/],
    [
      "no descriptor with the throwaway's name",
      (libc) => ({
        getsockname: (fd, addr, length) => fd > 2 && !lentFds.has(fd) ? -1 : libc.getsockname(fd, addr, length),
      }),
      /^0 descriptors have the throwaway socket's name$/,
    ],
  ];
  const lentFds = new Set<number>();
  for (const [what, fault, reason] of faults) {
    test(`a failure after the throwaway server started (${what}) falls back, leaving nothing behind`, T, async () => {
      const listening = listeningHere();
      const before = fdTargets();
      const lent = await lendable();
      lentFds.add(lent.fd);
      const ino = inodeOf(lent.fd);
      const own = copiesOf(ino, lent.fd).join();
      let server: FetchServer | undefined;
      try {
        const adopt = await adoptWith((libc) => ({ ...libc, ...fault(libc), errno: () => 22 }));
        const refused = await adopt({ fd: lent.fd, backlog: 511, owned: false }, {}, () => new Response("x"));
        assert.match(String(refused), reason);
        // No throwaway listening, no copy of the lent socket: the lent descriptor as it was.
        const others = () => [...listeningHere()].filter((i) => i !== ino && !listening.has(i));
        assert.ok(await until(() => others().length === 0), `still listening: ${others()}`);
        assert.ok(await until(() => copiesOf(ino, lent.fd).join() === own), `copies: ${copiesOf(ino, lent.fd)}`);
        // What serves it then (node:http in a slot; here the runtime's server again) can.
        const served = await a.adoptFetchServer!(
          { fd: lent.fd, backlog: 511, owned: false },
          {},
          () => new Response("ok"),
        );
        assert.notEqual(typeof served, "string", String(served));
        server = served as FetchServer;
        assert.equal((await get(lent.port)).body, "ok");
      } finally {
        await server?.close();
        await lent.close();
        lentFds.delete(lent.fd);
      }
      // No socket or file opened since but the lent socket's fd (which Deno's process keeps); a runtime's
      // own event loop machinery (Bun's second epoll instance, made on first use) is not the server's.
      const leaked = () =>
        [...fdTargets()].filter(([fd, to]) =>
          before.get(fd) !== to && !to.startsWith("anon_inode:") && !(fd === lent.fd && to === `socket:[${ino}]`)
        );
      assert.ok(await until(() => leaked().length === 0), `leaked: ${leaked().join(" ")}`);
    });
  }

  test("a streamed response outlives the drain: the drain ends once its body is sent", T, async () => {
    const lent = await lendable();
    const ino = inodeOf(lent.fd);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const streamed = () =>
      new Response(
        new ReadableStream({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode("a"));
            await gate;
            controller.enqueue(new TextEncoder().encode("b"));
            controller.close();
          },
        }),
      );
    let server: FetchServer | undefined;
    try {
      const served = await a.adoptFetchServer!({ fd: lent.fd, backlog: 511, owned: false }, {}, streamed);
      assert.notEqual(typeof served, "string", String(served));
      server = served as FetchServer;
      // The headers and the first chunk are out: the handler has returned, the body is not done.
      // (An object: a promise given to resolve() would be waited for.)
      const { body } = await new Promise<{ body: Promise<string> }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: lent.port, path: "/", agent: false }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          const body = new Promise<string>((done) => {
            res.on("data", (d: string) => (text += d));
            res.on("end", () => done(text));
          });
          resolve({ body });
        });
        req.on("error", reject);
        req.end();
      });
      // The drain as a slot makes it: stop accepting, nothing pending (a handler may be done while
      // its body streams), then finish() where the server has one.
      await server.stopAccepting();
      const s = server;
      const drained = until(() => s.pending === 0).then(async (quiet) => {
        if (quiet && s.finish) await s.finish();
        return quiet;
      });
      let finished = false;
      void drained.then(() => (finished = true));
      assert.equal(await until(() => finished, 200), false, "the drain ended while a body was still streaming");
      release();
      assert.equal(await body, "ab");
      assert.notEqual(await drained, false, `pending never fell to 0: ${server.pending}`);
    } finally {
      release();
      await server?.close();
      await lent.close();
      assert.ok(await until(() => copiesOf(ino, lent.fd).length === 0), `still open: ${copiesOf(ino, lent.fd)}`);
    }
  });

  test("refuses what it cannot serve, and changes nothing: no throwaway left listening", T, async () => {
    const before = listeningHere();
    for (const fd of [0, 100_000]) {
      const refused = await a.adoptFetchServer!({ fd, backlog: 511, owned: false }, {}, () => new Response("x"));
      assert.equal(typeof refused, "string");
    }
    assert.deepEqual(listeningHere(), before);
  });
});

/** A worker's slot serving `app` on a shared plan whose socket it inherited (POLYBIND_FDS), under `with_`. */
async function slotOnLent(
  withAdopt: (base: Adapter) => Adapter,
  check: (res: { headers: Record<string, unknown>; body: string }) => void,
): Promise<void> {
  const prepared = await preparePlan(planListeners("127.0.0.1:0", 2, { shared: true }));
  const fds = JSON.stringify(Object.fromEntries(prepared.descriptors().map((d) => [d.key, d.fd])));
  const base = adapter();
  const platform = { ...base.platform, env: (name: string) => name === FDS_VARIABLE ? fds : base.platform.env(name) };
  const faked = withAdopt({ ...base, platform } as Adapter);
  const spec = {
    module: "data:text/javascript,",
    kind: "app" as const,
    plans: [prepared.plan],
    index: 0,
    generation: 1,
    workers: 2,
    graceMs: 1_000,
    workerHeader: true,
  };
  const slot = withAdapter(faked, () => new Slot(spec, () => {}));
  try {
    await withAdapter(faked, () => slot.serve({ fetch: () => new Response("slot") }));
    const port = prepared.plan.address.transport === "tcp" ? prepared.plan.address.port : 0;
    const res = await get(port);
    assert.equal(res.headers["x-polybind-worker"], "1.0");
    assert.equal(res.body, "slot");
    check(res);
  } finally {
    await withAdapter(faked, () => slot.stop(1_000));
    await prepared.close();
    // A slot is its process's WorkerContext: this process is no worker.
    delete (globalThis as { [CONTEXT_KEY]?: unknown })[CONTEXT_KEY];
  }
}

describe("a worker's slot on a lent socket", { skip: !canAdopt }, () => {
  test("is served by the runtime's own server (adopted; no node:http keep-alive header)", T, async () => {
    const adopted: unknown[] = [];
    const spy = (base: Adapter): Adapter => ({
      ...base,
      adoptFetchServer: async (socket, options, handler) => {
        const result = await base.adoptFetchServer!(socket, options, handler);
        adopted.push(result);
        return result;
      },
    });
    await slotOnLent(spy, (res) => {
      assert.ok(adopted.length > 0 && adopted.every((r) => typeof r !== "string"), `adoptions: ${adopted}`);
      assert.equal(res.headers["keep-alive"], undefined);
    });
  });

  test("falls back to node:http where adoption is refused, and still serves", T, async () => {
    const refuse = (base: Adapter) => ({ ...base, adoptFetchServer: () => Promise.resolve("refused for the test") });
    await slotOnLent(
      refuse as (base: Adapter) => Adapter,
      (res) => assert.match(String(res.headers["keep-alive"]), /timeout=/),
    );
  });
});

describe("supervise() with lent sockets", () => {
  test("the workers answer with the runtime's own server where it can adopt them, node:http elsewhere", T, async () => {
    const app = "data:text/javascript,export default { fetch: () => new Response('lent') }";
    const server = await supervise({
      app,
      listen: { host: "127.0.0.1", port: 0 },
      workers: 2,
      handover: "lend",
      signals: false,
      workerHeader: true,
    });
    try {
      const addr = server.addrs[0]!;
      if (addr.transport !== "tcp") throw new Error("a TCP address was asked for");
      const seen = new Set<unknown>();
      // Until both workers have answered (the kernel picks which one accepts).
      for (let i = 0; i < 200 && seen.size < 2; i++) {
        const res = await get(addr.port);
        assert.equal(res.body, "lent");
        seen.add(res.headers["x-polybind-worker"]);
        // node:http names its keep-alive timeout; Deno.serve and Bun.serve do not.
        assert.equal(res.headers["keep-alive"] === undefined, canAdopt && a.fetchServer !== undefined);
      }
      assert.deepEqual([...seen].sort(), ["1.0", "1.1"]);
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  });
});
