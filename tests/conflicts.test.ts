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
import { adapter, useAdapter } from "../src/_adapter.ts";
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
      useAdapter({
        ...real,
        fs: {
          ...real.fs,
          lstat: async (p) => {
            const info = await real.fs.lstat(p);
            return p.endsWith(".stale") && info ? { ...info, ino: info.ino + 1 } : info;
          },
          link: () => Promise.reject(Object.assign(new Error("file exists"), { code: "EEXIST" })),
        },
      });
      await assert.rejects(
        cleanupUnixSocket({ uds: path }),
        (err) => err instanceof ListenError && /kept at .*\.stale/.test(err.message),
      );
    } finally {
      useAdapter(real);
      await dir.cleanup();
    }
  });

  test("closing a Unix listener says where it kept a file swapped in that it could not put back", T, async () => {
    const dir = await tempDir();
    const fs = adapter().fs;
    const { lstat, link } = fs;
    try {
      const path = join(dir.path, "own.sock");
      const listener = await createListener({ uds: path });
      // The same swap as above, met by close() when it removes its own socket file.
      Object.assign(fs, {
        lstat: async (p: string) => {
          const info = await lstat(p);
          return p.endsWith(".stale") && info ? { ...info, ino: info.ino + 1 } : info;
        },
        link: () => Promise.reject(Object.assign(new Error("file exists"), { code: "EEXIST" })),
      });
      await assert.rejects(
        listener.close(),
        (err) => err instanceof ListenError && /kept at .*\.stale/.test(err.message),
      );
    } finally {
      Object.assign(fs, { lstat, link });
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
    assert.match(err.message, /no IPC channel/);
  });

  test("a worker whose primary never hands the socket over says so", T, async () => {
    if (!capabilities().processShare || capabilities().runtime !== "node") return;
    const handOff = pathToFileURL(projectFile("adapters/_node_handoff")).href;
    const script = `import(${JSON.stringify(handOff)}).then(({ nodeHandOff }) => nodeHandOff.receive("k", 200))` +
      `.then(() => process.send("got"), (e) => process.send({ code: e.code, message: e.message }))`;
    // The parent starts the child but never calls handOff(child): nobody answers its request.
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    try {
      // The child's request for the socket comes first; then its answer.
      const answer = await new Promise<{ code: string; message: string }>((resolve) =>
        child.on("message", (m: { polybind?: string; code: string; message: string }) => {
          if (m.polybind === undefined) resolve(m);
        })
      );
      assert.equal(answer.code, "ETIMEDOUT");
      assert.match(answer.message, /within 200 ms: the parent must call handOff\(child\)/);
    } finally {
      child.kill();
    }
  });
});
