// Unix socket listeners: file mode, stale sockets from other processes, live servers, files
// that are not sockets, long paths, cleanup on close and cleanupUnixSocket.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cleanupUnixSocket, createListener, createListeners, ListenError } from "../mod.ts";
import { exchange, leaveStaleSocket, otherProcessServer, serveUpper, tempDir } from "./_helpers.ts";

const T = { timeout: 30_000 };

async function exists(path: string): Promise<boolean> {
  return await lstat(path).then(() => true, () => false);
}

describe("createListener (Unix socket)", () => {
  test("binds, serves real clients, sets the mode and removes its file on close", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "app.sock");
      const listener = await createListener({ uds: path });
      assert.deepEqual(listener.addr, { transport: "unix", path });
      const st = await lstat(path);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o660);
      const serving = serveUpper(listener);
      assert.equal(await exchange(path, "unix"), "UNIX");
      await listener.close();
      await serving;
      assert.equal(await exists(path), false);
      const others = (await import("node:fs/promises")).readdir(dir.path);
      assert.deepEqual(await others, [], "no temporary names are left behind");
    } finally {
      await dir.cleanup();
    }
  });

  test("udsMode sets the mode", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "open.sock");
      await using _listener = await createListener({ uds: path, udsMode: 0o600 });
      assert.equal((await lstat(path)).mode & 0o777, 0o600);
    } finally {
      await dir.cleanup();
    }
  });

  test("a stale socket left by a killed process is replaced", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "stale.sock");
      await leaveStaleSocket(path);
      assert.ok((await lstat(path)).isSocket());
      const listener = await createListener({ uds: path });
      const serving = serveUpper(listener);
      assert.equal(await exchange(path, "fresh"), "FRESH");
      await listener.close();
      await serving;
    } finally {
      await dir.cleanup();
    }
  });

  test("a live server's socket is refused with EADDRINUSE and keeps working", T, async () => {
    const dir = await tempDir();
    const path = join(dir.path, "live.sock");
    const other = await otherProcessServer(path);
    try {
      await assert.rejects(createListener({ uds: path }), (err: ListenError) => {
        assert.ok(err instanceof ListenError);
        assert.equal(err.code, "EADDRINUSE");
        assert.equal(err.address, path);
        assert.match(err.message, /already in use/);
        return true;
      });
      assert.equal(await exchange(path, "x"), "other");
    } finally {
      await other.kill();
      await dir.cleanup();
    }
  });

  test("a regular file, a directory or a link at the path is refused and untouched", T, async () => {
    const dir = await tempDir();
    try {
      const file = join(dir.path, "file");
      await writeFile(file, "precious");
      const folder = join(dir.path, "folder");
      await mkdir(folder);
      const link = join(dir.path, "link");
      await symlink(file, link);
      for (const path of [file, folder, link]) {
        await assert.rejects(createListener({ uds: path }), (err: ListenError) => {
          assert.ok(err instanceof ListenError);
          assert.equal(err.code, "EEXIST");
          assert.ok(err.message.includes(path), err.message);
          return true;
        });
      }
      assert.equal(await readFile(file, "utf8"), "precious");
      assert.ok((await lstat(folder)).isDirectory());
      assert.equal(await readlink(link), file);
    } finally {
      await dir.cleanup();
    }
  });

  test("a missing directory gives a clear error", T, async () => {
    await assert.rejects(createListener({ uds: "/nonexistent-polybind-dir/a.sock" }), (err: ListenError) => {
      assert.equal(err.code, "ENOENT");
      assert.match(err.message, /directory \/nonexistent-polybind-dir does not exist/);
      return true;
    });
  });

  test("a path over the OS limit is refused before anything is created", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "s".repeat(120));
      await assert.rejects(createListener({ uds: path }), RangeError);
      assert.equal(await exists(path), false);
    } finally {
      await dir.cleanup();
    }
  });

  test("several listeners on a Unix socket share one socket", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "multi.sock");
      const listeners = await createListeners({ uds: path }, 3);
      assert.equal(new Set(listeners.map((l) => l.native)).size, 1);
      const serving = listeners.map((l) => serveUpper(l));
      assert.equal(await exchange(path, "m"), "M");
      await listeners[0]!.close();
      assert.ok(await exists(path), "the socket lives while other views are open");
      await Promise.all(listeners.map((l) => l.close()));
      await Promise.all(serving);
      assert.equal(await exists(path), false);
    } finally {
      await dir.cleanup();
    }
  });

  test("closing does not remove a socket file that is no longer its own", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "swap.sock");
      const listener = await createListener({ uds: path });
      const { rename } = await import("node:fs/promises");
      await rename(path, join(dir.path, "moved.sock"));
      await writeFile(path, "someone else's");
      await listener.close();
      assert.equal(await readFile(path, "utf8"), "someone else's");
    } finally {
      await dir.cleanup();
    }
  });
});

describe("cleanupUnixSocket", () => {
  test("removes a stale socket, and is a no-op without uds or file", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "left.sock");
      await cleanupUnixSocket({});
      await cleanupUnixSocket({ uds: path });
      await leaveStaleSocket(path);
      await cleanupUnixSocket({ uds: path });
      assert.equal(await exists(path), false);
    } finally {
      await dir.cleanup();
    }
  });

  test("never removes a live socket or anything that is not a socket", T, async () => {
    const dir = await tempDir();
    const live = join(dir.path, "live.sock");
    const other = await otherProcessServer(live);
    try {
      const file = join(dir.path, "notes.txt");
      await writeFile(file, "keep");
      await cleanupUnixSocket({ uds: file });
      await cleanupUnixSocket({ uds: dir.path });
      await cleanupUnixSocket({ uds: live });
      assert.equal(await readFile(file, "utf8"), "keep");
      assert.equal(await exchange(live, "x"), "other");
    } finally {
      await other.kill();
      await dir.cleanup();
    }
  });
});
