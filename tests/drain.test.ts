// Listener.drain(): closing one listener without dropping the connections queued on it.
// The contract:
//   - drain(): Promise<void>. Every connection already queued is still handed out by accept() and
//     the async iterator until an accept() waits with nothing to take; then the listener closes,
//     the iterator ends, accept() rejects with ECLOSED, and the promise resolves. Idempotent.
//   - On a view of a shared socket it is the same as close(): the socket stays open for the others.
//   - Linux drops the queue of a reuseport socket that is closed (unless net.ipv4.tcp_migrate_req=1,
//     Linux 5.14+); drain() must not.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { capabilities, createListener, createListeners, type Listener } from "../mod.ts";
import { dial, exchange, openClients, serveUpper, tempDir } from "./_helpers.ts";
import { canCountFds, fdTargets, leakedFds } from "./_fd.ts";

const T = { timeout: 30_000 };

/** Sends `text`, half-closes, and resolves with the reply, on a connected socket. */
function reply(socket: Socket, text: string): Promise<string> {
  let got = "";
  socket.on("data", (c: Buffer) => (got += c));
  socket.end(text);
  return new Promise((resolve, reject) => {
    socket.once("close", () => resolve(got));
    socket.once("error", reject);
  });
}

/** Opens `n` clients that each send a line and wait for the reply; resolves when all are connected. */
function clients(port: number, n: number): Promise<Promise<string>[]> {
  return openClients(port, n, (socket, i) => socket.end(`req ${i}`));
}

describe("Listener.drain()", () => {
  test("draining one of four listeners under load drops no queued connection", T, async () => {
    const fds = canCountFds ? fdTargets() : new Map();
    const listeners = await createListeners({ port: 0 }, 4);
    const port = (listeners[0]!.addr as { port: number }).port;
    const serving = listeners.slice(1).map((l) => serveUpper(l));
    const n = 400;
    const replies = await clients(port, n); // all connected: about a quarter waits in listener 0's queue
    const draining = serveUpper(listeners[0]!); // someone accepts while it drains
    await listeners[0]!.drain();
    await draining; // the iterator ended
    await assert.rejects(listeners[0]!.accept(), { code: "ECLOSED" });
    const results = await Promise.all(replies);
    assert.deepEqual(results.filter((r) => !r.startsWith("REQ")), [], "every queued connection was served");
    // New connections go to the three left.
    for (let i = 0; i < 20; i++) assert.equal(await exchange(port, `after ${i}`), `AFTER ${i}`);
    await listeners[0]!.drain(); // idempotent
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(serving);
    if (canCountFds) assert.deepEqual(await leakedFds(fds), [], "no descriptor left open");
  });

  test("connections that arrive while draining a lone listener are served or refused, never reset", T, async () => {
    const listener = await createListener({ port: 0 });
    const port = (listener.addr as { port: number }).port;
    const replies = await clients(port, 50);
    const serving = serveUpper(listener);
    await listener.drain();
    await serving;
    const results = await Promise.all(replies);
    assert.deepEqual(results.filter((r) => !r.startsWith("REQ")), []);
    await assert.rejects(exchange(port, "late"), { code: "ECONNREFUSED" });
  });

  test("draining a view of a shared socket leaves the socket to the other views", T, async () => {
    const [a, b] = await createListeners({ port: 0 }, 2, { shared: true });
    const port = (a!.addr as { port: number }).port;
    await a!.drain();
    await assert.rejects(a!.accept(), { code: "ECLOSED" });
    const serving = serveUpper(b!);
    assert.equal(await exchange(port, "still"), "STILL");
    await b!.close();
    await serving;
  });

  test("a Unix socket listener drains its queue, then removes its file", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "drain.sock");
      const listener: Listener = await createListener({ uds: path });
      // Every client connected (queued, not accepted) before anyone serves.
      const sockets = await Promise.all(Array.from({ length: 20 }, () => dial(path)));
      const waiting = sockets.map((socket, i) => reply(socket, `u${i}`));
      const serving = serveUpper(listener);
      await listener.drain();
      await serving;
      assert.deepEqual(await Promise.all(waiting), waiting.map((_, i) => `U${i}`));
      await assert.rejects(import("node:fs/promises").then((fs) => fs.lstat(path)), { code: "ENOENT" });
    } finally {
      await dir.cleanup();
    }
  });

  test("close() instead resets the queue of a reuseport socket, unless the kernel migrates it", {
    ...T,
    skip: !capabilities().reusePort.tcp && "no reuseport here",
  }, async () => {
    // The first test with drain() replaced by close(): what drain() saves.
    const listeners = await createListeners({ port: 0 }, 4);
    const port = (listeners[0]!.addr as { port: number }).port;
    const serving = listeners.slice(1).map((l) => serveUpper(l));
    const replies = await clients(port, 200); // all connected: about 50 wait in listener 0's queue
    await listeners[0]!.close();
    const dropped = (await Promise.all(replies)).filter((r) => !r.startsWith("REQ")).length;
    console.log(`[figure] close() dropped ${dropped} of 200; drain() drops 0`);
    // net.ipv4.tcp_migrate_req = 1 moves a closed socket's queue to the others (Linux 5.14+).
    const migrate = await readFile("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").then(
      (t) => t.trim() === "1",
      () => false,
    );
    if (migrate) assert.equal(dropped, 0);
    else assert.ok(dropped > 0, "close() lost the queued connections that drain() serves");
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(serving);
  });
});
