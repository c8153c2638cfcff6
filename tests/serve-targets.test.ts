// serveTargets: the runtime's own HTTP server (Deno.serve, Bun.serve, node:http) on a plan keeps
// every promise of the listeners: every address answers, a Unix socket gets its exact mode.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, readdir } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import process from "node:process";
import { capabilities, planListeners, preparePlan, type ServeOptions, serveTargets } from "../mod.ts";
import { get, run } from "./_process.ts";
import { tempDir } from "./_helpers.ts";

const T = { timeout: 30_000 };
const runtime = capabilities().runtime;

interface DenoServe {
  serve(options: Record<string, unknown>, handler: () => Response): { shutdown(): Promise<void> };
}
interface BunServe {
  serve(options: Record<string, unknown>): { stop(force?: boolean): Promise<void> | void };
}

/** Starts this runtime's own HTTP server on `options`; resolves once it listens, with its stop. */
async function startServer(options: ServeOptions): Promise<() => Promise<void>> {
  const body = () => new Response("served");
  if (runtime === "deno") {
    const server = (globalThis as unknown as { Deno: DenoServe }).Deno.serve({ ...options, onListen() {} }, body);
    return () => server.shutdown();
  }
  if (runtime === "bun") {
    const server = (globalThis as unknown as { Bun: BunServe }).Bun.serve({ ...options, fetch: body });
    return async () => void await server.stop(true);
  }
  const server = createServer((_req, res) => res.end("served"));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => resolve());
  });
  return () => new Promise((resolve) => server.close(() => resolve()));
}

describe("serveTargets", () => {
  test("every address of localhost answers, 127.0.0.1 and ::1", T, async () => {
    const prepared = await preparePlan(planListeners("localhost:0", 1));
    const stops: (() => Promise<void>)[] = [];
    try {
      await prepared.release();
      const targets = await serveTargets(prepared.plan, 0);
      assert.deepEqual(prepared.plan.resolved, ["127.0.0.1", "::1"]);
      assert.equal(targets.length, 2);
      for (const target of targets) {
        stops.push(await startServer(target.options));
        await target.listening();
      }
      const port = prepared.plan.address.transport === "tcp" ? prepared.plan.address.port : 0;
      assert.equal((await get(`http://127.0.0.1:${port}/`)).body, "served");
      assert.equal((await get(`http://[::1]:${port}/`)).body, "served");
    } finally {
      for (const stop of stops) await stop();
      await prepared.close();
    }
  });

  test("the options are named as this runtime's server names them, and bind only the plan's host", T, async () => {
    const prepared = await preparePlan(planListeners({ port: 0 }, 1));
    try {
      await prepared.release();
      const [target, ...rest] = await serveTargets(prepared.plan, 0);
      assert.equal(rest.length, 0);
      const port = prepared.plan.address.transport === "tcp" ? prepared.plan.address.port : 0;
      const host = runtime === "node" ? { host: "127.0.0.1" } : { hostname: "127.0.0.1" };
      assert.deepEqual(target!.options, { ...host, port });
      if (runtime === "node") {
        // Node's server.listen reads `host`: with `hostname` it would bind every interface.
        const server = createServer();
        await new Promise<void>((resolve) => server.listen(target!.options, () => resolve()));
        assert.equal((server.address() as { address: string }).address, "127.0.0.1");
        await new Promise((resolve) => server.close(resolve));
      }
      await assert.rejects(serveTargets(prepared.plan, 1), RangeError);
    } finally {
      await prepared.close();
    }
  });

  test("a reuseport plan asks for reusePort, a shared plan has no serve options", T, async () => {
    const caps = { ...capabilities(), os: "linux", reusePort: { tcp: true, udp: true } };
    const plan = {
      ...planListeners({ port: 8123 }, 2, { capabilities: caps }),
      prepared: true,
      resolved: ["127.0.0.1"],
    };
    const [target] = await serveTargets(plan, 1);
    assert.equal((target!.options as { reusePort?: boolean }).reusePort, true);
    const shared = planListeners({ port: 8123 }, 2, { capabilities: { ...caps, processShare: true }, shared: true });
    await assert.rejects(serveTargets(shared, 0), TypeError);
  });

  for (const umask of [0o000, 0o022]) {
    test(`a Unix socket gets exactly udsMode under umask ${umask.toString(8).padStart(3, "0")}`, T, async () => {
      const dir = await tempDir();
      const before = process.umask(umask);
      let stop: (() => Promise<void>) | undefined;
      try {
        const path = join(dir.path, "app.sock");
        const [target] = await serveTargets(planListeners({ uds: path, udsMode: 0o600 }, 1), 0);
        // Bound in a private folder: nobody connects before the mode is set.
        const at = Object.values(target!.options)[0] as string;
        assert.notEqual(at, path);
        assert.equal((await lstat(join(at, ".."))).mode & 0o777, 0o700);
        stop = await startServer(target!.options);
        await target!.listening();
        assert.equal((await lstat(path)).mode & 0o777, 0o600);
        assert.equal((await get(`unix:${path}`)).body, "served");
        await stop();
        stop = undefined;
        await target!.close();
        await assert.rejects(lstat(path), { code: "ENOENT" });
        assert.deepEqual(await readdir(dir.path), []);
      } finally {
        process.umask(before);
        await stop?.();
        await dir.cleanup();
      }
    });
  }
});

describe("polybind serve on a Unix socket with several workers", () => {
  test("serves with every worker, or says why it cannot", T, async () => {
    const dir = await tempDir();
    const child = run("cli/polybind", ["serve", "--uds", join(dir.path, "app.sock"), "--workers", "2"]);
    try {
      const line = await child.line(/^polybind serve: listening on /, 20_000);
      const strategy = await child.line(/^strategy: /);
      if (capabilities().processShare) {
        assert.match(line, /with 2 worker\(s\)/);
      } else {
        assert.match(line, /with 1 worker\(s\)/);
        assert.match(strategy, new RegExp(`${runtime} cannot hand a socket to other processes: one accepting worker`));
      }
    } finally {
      await child.stop("SIGINT");
      await dir.cleanup();
    }
  });
});
