// Nothing is resolved silently: conflicting fields are refused, clean-up errors reach the caller,
// and a failed socket hand-off says what happened.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import {
  capabilities,
  cleanupUnixSocket,
  createListener,
  createUdpListener,
  ListenError,
  listenFromPlan,
  planListeners,
  type ServerConfig,
} from "../mod.ts";
import { adapter, withAdapter } from "../src/_adapter.ts";
import { leaveStaleSocket, tempDir } from "./_helpers.ts";
import { projectFile } from "./_process.ts";

const T = { timeout: 30_000 };

describe("conflicting settings", () => {
  const conflicts: [ServerConfig, string, string][] = [
    [{ uds: "/tmp/a.sock", fd: 3 }, "fd", "uds"],
    [{ host: "127.0.0.1", uds: "/tmp/a.sock" }, "uds", "host"],
    [{ port: 8000, uds: "/tmp/a.sock" }, "uds", "port"],
    [{ host: "127.0.0.1", port: 0, fd: 3 }, "fd", "host"],
    [{ fd: 3, systemd: true }, "fd", "systemd"],
    [{ systemd: "web", port: 0 }, "systemd", "port"],
  ];
  for (const [config, a, b] of conflicts) {
    test(`'${a}' and '${b}' together are a RangeError naming both`, async () => {
      const named = new RegExp(`'${a}' and '${b}' both say where to listen`);
      await assert.rejects(createListener(config), (err) => err instanceof RangeError && named.test(err.message));
      assert.throws(() => planListeners(config, 2), RangeError);
      if (!("fd" in config) && !("systemd" in config)) {
        await assert.rejects(createUdpListener(config), RangeError);
      }
    });
  }

  test("host and port together are one address", async () => {
    await using listener = await createListener({ host: "127.0.0.1", port: 0 });
    assert.equal(listener.addr.transport, "tcp");
  });
});

describe("clean-up errors reach the caller", () => {
  test("cleanupUnixSocket says where it kept a file swapped in that it could not put back", T, async () => {
    const dir = await tempDir();
    const real = adapter();
    try {
      const path = join(dir.path, "app.sock");
      await leaveStaleSocket(path);
      // Something else appears at the path while the stale socket is checked aside, and the
      // path is taken again before it can be put back.
      const fs = real.platform.fs;
      const swapped = {
        ...fs,
        lstat: async (p: string) => {
          const info = await fs.lstat(p);
          return p.endsWith(".stale") && info ? { ...info, ino: info.ino + 1 } : info;
        },
        link: () => Promise.reject(Object.assign(new Error("file exists"), { code: "EEXIST" })),
      };
      await withAdapter({ ...real, platform: { ...real.platform, fs: swapped } }, () =>
        assert.rejects(
          cleanupUnixSocket({ uds: path }),
          (err) => err instanceof ListenError && /kept at .*\.stale/.test(err.message),
        ));
    } finally {
      await dir.cleanup();
    }
  });

  test("closing a Unix listener says where it kept a file swapped in that it could not put back", T, async () => {
    const dir = await tempDir();
    const real = adapter();
    const fs = real.platform.fs;
    let swap = false;
    // The same swap as above, met by close() when it removes its own socket file.
    const swapped = {
      ...fs,
      lstat: async (p: string) => {
        const info = await fs.lstat(p);
        return swap && p.endsWith(".stale") && info ? { ...info, ino: info.ino + 1 } : info;
      },
      link: (from: string, to: string) =>
        swap ? Promise.reject(Object.assign(new Error("file exists"), { code: "EEXIST" })) : fs.link(from, to),
    };
    try {
      const path = join(dir.path, "own.sock");
      await withAdapter({ ...real, platform: { ...real.platform, fs: swapped } }, async () => {
        const listener = await createListener({ uds: path });
        swap = true;
        await assert.rejects(
          listener.close(),
          (err) => err instanceof ListenError && /kept at .*\.stale/.test(err.message),
        );
      });
    } finally {
      await dir.cleanup();
    }
  });
});

describe("socket hand-off errors", () => {
  test("a worker without a channel to its primary gets the real reason, not ETIMEDOUT", T, async () => {
    if (!capabilities().processShare) return;
    const plan = { ...planListeners({ port: 0 }, 2, { shared: true }), prepared: true };
    const err = await listenFromPlan(plan, 0).then(() => undefined, (e: unknown) => e);
    if (process.send !== undefined) return; // A test runner with IPC: nothing to check here.
    assert.ok(err instanceof ListenError, String(err));
    assert.notEqual(err.code, "ETIMEDOUT");
    // Lent over IPC (Node.js, Deno) or by inheritance (Bun): either way, the reason.
    assert.match(err.message, /no IPC channel|POLYBIND_FDS/);
  });

  test("a worker whose primary never lends it the socket says so", T, async () => {
    if (!capabilities().processShare || capabilities().runtime !== "node") return;
    const share = pathToFileURL(projectFile("adapters/_node_share")).href;
    const script = `import(${JSON.stringify(share)}).then(({ nodeShare }) => nodeShare.receive("k", 200))` +
      `.then(() => process.send("got"), (e) => process.send({ code: e.code, message: e.message }))`;
    // The parent starts the child but never calls shareWith(child): nobody answers its request.
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    try {
      // The child's request for the socket comes first; then its answer.
      const answer = await new Promise<{ code: string; message: string }>((resolve) =>
        child.on("message", (m: { polybind?: string; code: string; message: string }) => {
          if (m.polybind === undefined) resolve(m);
        })
      );
      assert.equal(answer.code, "ETIMEDOUT");
      assert.match(answer.message, /within 200 ms: the parent must call shareWith\(child\)/);
    } finally {
      child.kill();
    }
  });
});
