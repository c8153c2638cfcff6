// Reloads and new primaries: supervise()'s reload() with changed code (it takes effect), a
// new generation that fails or is late (the old one serves on, with no failed request), the
// command's SIGUSR2 (a new primary takes the socket over), and startSuccessor() with the
// successor form of an address, parent-listen:NAME.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  formatAddress,
  ListenError,
  parseAddress,
  planHandover,
  planListeners,
  preparePlan,
  startSuccessor,
  successorReady,
  supervise,
  type SuperviseOptions,
  type Supervisor,
} from "../mod.ts";
import { get, projectFile, run } from "./_process.ts";
import { within } from "./_helpers.ts";
import { running, waitFor } from "./_cli.ts";
import { runtimeCommand } from "./_runtime_command.ts";

const T = { timeout: 90_000 };
// Deno's node:child_process reports the signal it sent even when the child exited with 0.
const denoParent = (globalThis as { Deno?: unknown }).Deno !== undefined;

/** A folder with version.txt for tests/fixtures/version_app, which reads it as it is imported. */
function versionDir(): { dir: string; set(version: string): void; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "polybind-reload-"));
  const set = (version: string) => writeFileSync(join(dir, "version.txt"), version);
  return { dir, set, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** supervise() on tests/fixtures/version_app, serving "v1" from `v`, on 127.0.0.1 port 0, without signals. */
function serveVersion(v: ReturnType<typeof versionDir>, options: Partial<SuperviseOptions>): Promise<Supervisor> {
  process.env.VERSION_DIR = v.dir;
  v.set("v1");
  const app = projectFile("tests/fixtures/version_app");
  return supervise({ app, listen: { host: "127.0.0.1", port: 0 }, signals: false, ...options });
}

function urlOf(server: Supervisor): string {
  const addr = server.addrs[0]!;
  if (addr.transport !== "tcp") throw new Error("a TCP address was asked for");
  return `http://127.0.0.1:${addr.port}/`;
}

/** GETs on fresh connections until `stop()`; counts what failed (refused, reset, not 200). */
function loop(url: string): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let going = true;
  const failed: string[] = [];
  let ok = 0;
  const one = async () => {
    while (going) {
      try {
        const res = await get(url);
        if (res.status === 200) ok++;
        else failed.push(`status ${res.status}`);
      } catch (err) {
        failed.push((err as NodeJS.ErrnoException).code ?? String(err));
      }
    }
  };
  const clients = [one(), one(), one(), one()];
  return {
    async stop() {
      going = false;
      await Promise.all(clients);
      return { ok, failed };
    },
  };
}

describe("supervise().reload()", () => {
  test(
    "changed code takes effect in generation 2; a failed or late one changes nothing, with 0 failed requests",
    T,
    async () => {
      const v = versionDir();
      const server = await serveVersion(v, { workers: 2, workerHeader: true, reloadTimeoutMs: 3_000 });
      const url = urlOf(server);
      try {
        assert.equal((await get(url)).body, "v1\n");
        const load = loop(url);
        v.set("v2");
        assert.deepEqual(await server.reload(), { ok: true, generation: 2 });
        assert.equal(server.generation, 2);
        v.set("throw");
        const failed = await server.reload();
        assert.equal(failed.ok, false);
        assert.equal(failed.generation, 2);
        assert.match(failed.reason!, /this version cannot start/);
        v.set("hang");
        const late = await server.reload();
        assert.equal(late.ok, false);
        assert.match(late.reason!, /did not serve within 3000 ms/);
        const { ok, failed: errors } = await load.stop();
        assert.deepEqual(errors, []);
        assert.ok(ok > 0);
        for (let i = 0; i < 4; i++) {
          const res = await get(url);
          assert.equal(res.body, "v2\n");
          assert.match(String(res.headers["x-polybind-worker"]), /^2\.[01]$/);
        }
      } finally {
        const summary = await server.stop();
        v.cleanup();
        assert.equal(summary.code, 0);
        assert.equal(summary.generation, 2);
      }
    },
  );

  test("reloads asked for during one run once it has ended, as one more", T, async () => {
    const v = versionDir();
    const server = await serveVersion(v, { workers: 1 });
    try {
      const results = await Promise.all([server.reload(), server.reload(), server.reload()]);
      assert.deepEqual(results.map((r) => r.generation), [2, 3, 3]);
      assert.equal(server.generation, 3);
    } finally {
      await server.stop();
      v.cleanup();
    }
  });

  test("reloads asked for when the server stops are refused, never left waiting", T, async () => {
    const v = versionDir();
    const server = await serveVersion(v, { workers: 1 });
    try {
      const first = server.reload();
      const queued = server.reload();
      const summary = await server.stop();
      assert.equal(summary.code, 0);
      for (const result of await Promise.all([first, queued])) {
        if (!result.ok) assert.match(result.reason!, /stopping/);
      }
      assert.equal((await queued).ok, false);
      assert.deepEqual(await server.reload(), {
        ok: false,
        generation: server.generation,
        reason: "the server has stopped",
      });
    } finally {
      v.cleanup();
    }
  });

  test("the handover is said, with its reason", T, () => {
    const { handover, reason } = planHandover();
    assert.ok(handover === "lend" || handover === "beside");
    assert.ok(reason.length > 20, reason);
    assert.throws(() => planHandover("sideways" as "lend"), /'handover' must be "auto", "lend" or "beside"/);
  });
});

describe("polybind serve on SIGUSR2", () => {
  test(
    "a new primary takes the socket over: the next generation answers, the old primary leaves with 0",
    T,
    async () => {
      const v = versionDir();
      v.set("v1");
      const child = run(
        "cli/polybind",
        ["serve", projectFile("tests/fixtures/version_app"), "--port", "0", "--workers", "2", "--worker-header"],
        { VERSION_DIR: v.dir },
      );
      let successor: number | undefined;
      try {
        const line = await child.line(/^polybind serve: listening on /, 60_000);
        const url = /http:\/\/\S+?(?=,|\s)/.exec(line)![0] + "/";
        const load = loop(url);
        v.set("v2");
        // Its exit, not the end of its output: the new primary writes on the same pipes.
        const exit = new Promise<number | null>((resolve) => child.process.once("exit", (code) => resolve(code)));
        process.kill(child.process.pid!, "SIGUSR2");
        const started = await child.line(/new primary started \(pid \d+\)/, 60_000);
        successor = Number(/pid (\d+)/.exec(started)![1]);
        const code = await within(exit, "the old primary's exit", 30_000).catch((err: Error) => {
          throw new Error(`${err.message}: ${child.stdout.join("\n")}\n${child.stderr.join("")}`);
        });
        if (!denoParent) assert.equal(code, 0, child.stderr.join(""));
        const { failed } = await load.stop();
        assert.deepEqual(failed, []);
        const res = await get(url);
        assert.equal(res.body, "v2\n");
        assert.match(String(res.headers["x-polybind-worker"]), /^2\.[01]$/);
        // The new primary holds the listening socket the old one handed over: one of its descriptors.
        const sockets = readdirSync(`/proc/${successor}/fd`).map((fd) => {
          try {
            return readlinkSync(`/proc/${successor}/fd/${fd}`);
          } catch {
            return "";
          }
        }).filter((l) => l.startsWith("socket:"));
        assert.ok(sockets.length >= 1, "the successor holds the socket");
        // Each worker had a SO_REUSEPORT socket of its own: the successor lends each its own again.
        const strategies = () => child.stdout.filter((l) => l.startsWith("strategy: "));
        assert.ok(await waitFor(() => strategies().length >= 2, 10_000), child.stdout.join("\n"));
        const lent = /^strategy: reuseport, lent /;
        assert.equal(lent.test(strategies()[1]!), lent.test(strategies()[0]!), strategies().join("\n"));
        const seen = new Set<string>();
        for (let i = 0; i < 200 && seen.size < 2; i++) seen.add(String((await get(url)).headers["x-polybind-worker"]));
        assert.deepEqual([...seen].sort(), ["2.0", "2.1"]);
      } finally {
        if (successor !== undefined && running(successor)) {
          process.kill(successor, "SIGTERM");
          await waitFor(() => !running(successor!), 20_000);
        }
        await child.stop();
        v.cleanup();
      }
    },
  );
});

describe("startSuccessor() and parent-listen", () => {
  test("the successor form of an address parses and prints", () => {
    assert.deepEqual(parseAddress("parent-listen"), { parent: true });
    assert.deepEqual(parseAddress("parent-listen:web"), { parent: "web" });
    assert.equal(formatAddress({ parent: "web" }), "parent-listen:web");
    assert.throws(() => parseAddress("parent-listen:a b"), /a socket name without ':' or spaces/);
  });

  test("in a process no predecessor started: a clear error, and successorReady() does nothing", T, async () => {
    assert.equal(successorReady(), false);
    const { createListener } = await import("../mod.ts");
    await assert.rejects(createListener("parent-listen:web"), (err: unknown) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.code, "ENOENT");
      assert.match(err.message, /POLYBIND_LISTEN_FDS is not set.*startSuccessor/);
      return true;
    });
  });

  test(
    "a successor listens on the socket handed over and says when it serves; the socket stays open here",
    T,
    async () => {
      const prepared = await preparePlan(planListeners({ host: "127.0.0.1", port: 0 }, 1, { shared: true }));
      try {
        const [socket] = prepared.descriptors();
        assert.ok(socket, "a descriptor for the socket");
        const address = prepared.plan.address;
        assert.equal(address.transport, "tcp");
        const [command, args] = runtimeCommand(projectFile("tests/fixtures/successor_child"));
        const next = startSuccessor([{ name: "web", fd: socket.fd }], { command: [command, ...args] });
        await within(next.ready, "the successor's word", 30_000);
        const text = await new Promise<string>((resolve, reject) => {
          const c = connect({ host: "127.0.0.1", port: address.transport === "tcp" ? address.port : 0 });
          let got = "";
          c.setEncoding("utf8");
          c.on("data", (d: string) => (got += d));
          c.on("end", () => resolve(got));
          c.on("error", reject);
        });
        assert.equal(text, `successor ${next.pid}\n`);
        assert.throws(() => startSuccessor([{ name: "a:b", fd: socket.fd }]), /'name' must have no ':' or spaces/);
      } finally {
        await prepared.close();
      }
    },
  );
});
