// The node:http path of a worker (src/_node_http.ts): a fetch handler answering node:http's
// requests through srvx, with the client as `info.remoteAddr` (read when the app asks), over TCP
// and a Unix socket, and a 500 for a handler that throws or rejects. On every runtime's node:http.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { nodeFetchHandler } from "../src/_node_http.ts";
import type { FetchErrorHandler, FetchHandler } from "../src/_adapter.ts";
import { tempDir } from "./_helpers.ts";

const T = { timeout: 20_000 };

/** A node:http server answering with `handler`, listening on `where` (a port 0 on 127.0.0.1, or a path). */
async function serve(handler: FetchHandler, where: string | 0, onError?: FetchErrorHandler): Promise<Server> {
  const server = createServer(await nodeFetchHandler(handler, onError));
  await new Promise<void>((resolve) => server.listen(where === 0 ? { port: 0, host: "127.0.0.1" } : where, resolve));
  return server;
}

/** One GET: the status, the body and the client's own port (TCP). */
function get(to: { port: number } | { socketPath: string }): Promise<{ status: number; body: string; port: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...to, host: "127.0.0.1", path: "/", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, port: req.socket?.localPort ?? 0 }));
    });
    req.on("error", reject);
    req.end();
  });
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

// Also what else the app sees on `info`: nothing but remoteAddr.
const addressOf: FetchHandler = (_request, info) =>
  new Response(JSON.stringify({ ...info.remoteAddr, keys: Object.keys(info) }));

test("info.remoteAddr over TCP is the client's address and port", T, async () => {
  const server = await serve(addressOf, 0);
  try {
    const { status, body, port } = await get({ port: (server.address() as AddressInfo).port });
    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(body), { transport: "tcp", hostname: "127.0.0.1", port, keys: [] });
  } finally {
    await close(server);
  }
});

test("info.remoteAddr over a Unix socket says unix", T, async () => {
  const dir = await tempDir();
  const path = join(dir.path, "s");
  const server = await serve(addressOf, path);
  try {
    const { status, body } = await get({ socketPath: path });
    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(body), { transport: "unix", path: "", keys: [] });
  } finally {
    await close(server);
    await dir.cleanup();
  }
});

test("a handler that throws or rejects is answered 500, and the server serves on", T, async () => {
  let calls = 0;
  const server = await serve(() => {
    calls++;
    if (calls === 1) throw new Error("thrown");
    if (calls === 2) return Promise.reject(new Error("rejected"));
    return new Response("fine");
  }, 0);
  try {
    const port = (server.address() as AddressInfo).port;
    assert.equal((await get({ port })).status, 500);
    assert.equal((await get({ port })).status, 500);
    assert.deepEqual([(await get({ port })).status, (await get({ port })).body], [200, "fine"]);
  } finally {
    await close(server);
  }
});

test("what a handler throws or rejects with is answered by onError; an onError that throws, 500", T, async () => {
  let calls = 0;
  const seen: string[] = [];
  const server = await serve(
    () => {
      calls++;
      if (calls === 1) throw new Error("thrown");
      if (calls === 2) return Promise.reject(new Error("rejected"));
      throw new Error("again");
    },
    0,
    (error) => {
      const message = (error as Error).message;
      seen.push(message);
      if (message === "again") throw new Error("onError fails too");
      return new Response(`answered ${message}`, { status: 503 });
    },
  );
  try {
    const port = (server.address() as AddressInfo).port;
    const first = await get({ port });
    const second = await get({ port });
    assert.deepEqual([first.status, first.body, second.status, second.body], [
      503,
      "answered thrown",
      503,
      "answered rejected",
    ]);
    assert.equal((await get({ port })).status, 500);
    assert.deepEqual(seen, ["thrown", "rejected", "again"]);
  } finally {
    await close(server);
  }
});
