// Promises kept over the life of listeners and connections, on every runtime, with real node:net
// and node:http clients: a peer that left before the first read, close() with connections still
// open, node:http serving a listener, and the local address of Unix connections.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Agent, createServer, request } from "node:http";
import type { Socket } from "node:net";
import { join } from "node:path";
import {
  capabilities,
  type Conn,
  createListener,
  handOffConnections,
  type Listener,
  type ServerConfig,
} from "../mod.ts";
import { dial, portOf, readAll, tempDir, within } from "./_helpers.ts";

const T = { timeout: 30_000 };
const kinds = capabilities().unix ? ["tcp", "unix"] as const : ["tcp"] as const;

/** A config of the given kind (loopback, or a socket in a fresh folder), and its clean-up. */
async function place(kind: "tcp" | "unix"): Promise<{ config: ServerConfig; cleanup(): Promise<void> }> {
  if (kind === "tcp") return { config: { host: "127.0.0.1", port: 0 }, cleanup: () => Promise.resolve() };
  const dir = await tempDir();
  return { config: { uds: join(dir.path, "s.sock") }, cleanup: dir.cleanup };
}

/** Where a client connects to `listener`: its port, or its path. */
function target(listener: Listener): number | string {
  return listener.addr.transport === "tcp" ? portOf(listener) : listener.addr.path;
}

const once = (socket: Socket, event: string) => new Promise<void>((resolve) => socket.once(event, () => resolve()));

/**
 * Accepts up to a barrier client: one that connects after everything before it happened, sends
 * a line and gets an answer. Once that answer has arrived, the server has long seen whatever
 * earlier peers did (their end or reset). Returns the connections accepted before the barrier.
 */
async function acceptUpToBarrier(listener: Listener, earlier: number): Promise<Conn[]> {
  const client = await dial(target(listener));
  const answered = new Promise<string>((resolve) => {
    let text = "";
    client.on("data", (chunk: Buffer) => void (text += chunk.toString()));
    client.once("end", () => resolve(text));
  });
  client.end("barrier");
  const before: Conn[] = [];
  for (;;) {
    const conn = await within(listener.accept(), "accept()");
    const isBarrier = conn.remoteAddr.transport === "tcp"
      ? conn.remoteAddr.port === client.localPort
      : before.length === earlier;
    if (!isBarrier) {
      before.push(conn);
      continue;
    }
    assert.equal(await within(readAll(conn), "the barrier's read"), "barrier");
    await conn.write(new TextEncoder().encode("ok"));
    await conn.closeWrite();
    assert.equal(await within(answered, "the barrier's answer"), "ok");
    conn.close();
    client.destroy();
    return before;
  }
}

/** Asserts that `conn` reads end of stream, by read() and then by `readable`. */
async function assertEnded(conn: Conn, what: string): Promise<void> {
  assert.equal(await within(conn.read(new Uint8Array(16)), `${what}: read()`), null);
  const reader = conn.readable.getReader();
  const first = await within(reader.read(), `${what}: readable`);
  assert.deepEqual(first, { done: true, value: undefined });
}

describe("a peer that has gone reads as end of stream", () => {
  for (const kind of kinds) {
    test(`${kind}: closed before accept, or after accept and before the first read`, T, async () => {
      const at = await place(kind);
      const listener = await createListener(at.config);
      const clients: Socket[] = [];
      const conns: Conn[] = [];
      try {
        const late = await dial(target(listener));
        clients.push(late);
        conns.push(await within(listener.accept(), "accept()"));
        const early = await dial(target(listener));
        clients.push(early);
        early.end();
        late.end();
        await Promise.all([once(early, "finish"), once(late, "finish")]);
        const before = await acceptUpToBarrier(listener, 1);
        assert.equal(before.length, 1);
        conns.push(...before);
        await assertEnded(before[0]!, "closed before accept");
        await assertEnded(conns[0]!, "closed after accept");
      } finally {
        for (const c of clients) c.destroy();
        for (const c of conns) c.close();
        await listener.close();
        await at.cleanup();
      }
    });
  }

  test("tcp: reset (RST) before accept, or after accept and before the first read; writes reject", T, async () => {
    const listener = await createListener({ host: "127.0.0.1", port: 0 });
    const conns: Conn[] = [];
    try {
      const late = await dial(portOf(listener));
      const lateConn = await within(listener.accept(), "accept()");
      conns.push(lateConn);
      const early = await dial(portOf(listener));
      early.resetAndDestroy();
      late.resetAndDestroy();
      await Promise.all([once(early, "close"), once(late, "close")]);
      // A peer reset before accept may never be accepted (Deno skips it): at most one.
      const before = await acceptUpToBarrier(listener, 1);
      assert.ok(before.length <= 1);
      conns.push(...before);
      for (const conn of conns) {
        await assertEnded(conn, "reset");
        let refused: unknown;
        for (let i = 0; i < 20 && refused === undefined; i++) {
          await conn.write(new Uint8Array(1024)).catch((err) => (refused = err ?? "rejected"));
        }
        assert.ok(refused !== undefined, "a write to a reset peer rejects");
      }
    } finally {
      for (const c of conns) c.close();
      await listener.close();
    }
  });
});

describe("Listener.close() with connections open", () => {
  for (const kind of kinds) {
    test(`${kind}: resolves at once, frees the address, and leaves accepted connections working`, T, async () => {
      const at = await place(kind);
      const first = await createListener(at.config);
      const client = await dial(target(first));
      let conn: Conn | undefined;
      let again: Listener | undefined;
      try {
        conn = await within(first.accept(), "accept()");
        await within(first.close(), "close() with a connection open");
        const config = kind === "tcp" ? { ...at.config, port: portOf(first) } : at.config;
        again = await createListener(config);
        assert.deepEqual(again.addr, first.addr);
        const received = new Promise<string>((resolve) => client.once("data", (c: Buffer) => resolve(c.toString())));
        client.write("ping");
        const buf = new Uint8Array(16);
        const n = await within(conn.read(buf), "read() after close()");
        assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "ping");
        await conn.write(new TextEncoder().encode("pong"));
        assert.equal(await within(received, "the answer"), "pong");
        // The new listener is the one that accepts now.
        const next = await dial(target(again));
        (await within(again.accept(), "accept() on the new listener")).close();
        next.destroy();
      } finally {
        client.destroy();
        conn?.close();
        await first.close();
        await again?.close();
        await at.cleanup();
      }
    });
  }
});

/** One request with node:http; resolves with the answer, and whether a kept-alive socket carried it. */
function ask(
  to: number | string,
  body: string,
  agent?: Agent,
): Promise<{ status: number; text: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const where = typeof to === "number" ? { host: "127.0.0.1", port: to } : { socketPath: to };
    const req = request({ ...where, method: "POST", path: "/echo", agent }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => void (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, reused: req.reusedSocket }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("handOffConnections: node:http serves a polybind listener", () => {
  for (const kind of kinds) {
    test(`${kind}: request bodies, keep-alive, and closing the listener stops new connections`, T, async () => {
      const at = await place(kind);
      const listener = await createListener(at.config);
      const to = target(listener);
      const server = createServer((req, res) => {
        let text = "";
        req.setEncoding("utf8");
        req.on("data", (chunk: string) => void (text += chunk));
        req.on("end", () => res.end(`${req.method} ${req.url} ${text} from ${req.socket.remoteAddress ?? "unix"}`));
      });
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const serving = handOffConnections(listener, server);
      serving.catch(() => {}); // Awaited below; a failure must not go unhandled meanwhile.
      try {
        const from = kind === "tcp" ? "127.0.0.1" : "unix";
        const one = await within(ask(to, "one", agent), "the first request");
        assert.deepEqual(one, { status: 200, text: `POST /echo one from ${from}`, reused: false });
        const two = await within(ask(to, "two".repeat(50_000), agent), "the second request");
        assert.equal(two.text, `POST /echo ${"two".repeat(50_000)} from ${from}`);
        assert.equal(two.reused, true, "the kept-alive connection carried the second request");
        await within(listener.close(), "close()");
        await within(serving, "the hand-off's end");
        await assert.rejects(dial(to), (err: { code?: string }) => ["ECONNREFUSED", "ENOENT"].includes(err.code!));
      } finally {
        agent.destroy();
        server.closeAllConnections();
        await listener.close();
        await serving.catch(() => {});
        await at.cleanup();
      }
    });
  }
});

// Bun's node:http, given a socket, never times out an idle kept-alive connection (Bun 1.4.5).
const idleTimeout = {
  ...T,
  skip: capabilities().runtime === "bun" && "Bun's node:http has no keep-alive timeout here",
};

test("handOffConnections: an idle kept-alive connection is closed after keepAliveTimeout", idleTimeout, async () => {
  const listener = await createListener({ host: "127.0.0.1", port: 0 });
  const server = createServer((_req, res) => res.end("ok"));
  server.keepAliveTimeout = 50;
  const serving = handOffConnections(listener, server);
  serving.catch(() => {});
  const client = await dial(portOf(listener));
  try {
    let reply = "";
    client.on("data", (chunk: Buffer) => void (reply += chunk.toString()));
    const closed = once(client, "end");
    client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await within(closed, "the server closing an idle connection");
    assert.match(reply, /^HTTP\/1.1 200 OK\r\n[^]*keep-alive[^]*\r\n\r\nok$/i);
  } finally {
    client.destroy();
    server.closeAllConnections();
    await listener.close();
    await serving.catch(() => {});
  }
});

describe("Conn.localAddr of a Unix connection", { skip: !capabilities().unix && "no Unix sockets" }, () => {
  test("is the listener's public path, not where the socket was bound", T, async () => {
    const dir = await tempDir();
    const listener = await createListener({ uds: join(dir.path, "public.sock") });
    const client = await dial(target(listener));
    let conn: Conn | undefined;
    try {
      conn = await within(listener.accept(), "accept()");
      assert.deepEqual(conn.localAddr, { transport: "unix", path: join(dir.path, "public.sock") });
      assert.deepEqual(conn.localAddr, listener.addr);
    } finally {
      client.destroy();
      conn?.close();
      await listener.close();
      await dir.cleanup();
    }
  });
});
