// How a node:dgram send settles (adapters/_dgram_send.ts), on a stand-in socket whose handle
// answers as Node.js's does: every outcome reported, whichever way the datagram goes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { constants } from "node:os";
import type { Socket } from "node:dgram";
import { dgramSender } from "../adapters/_dgram_send.ts";

const EMSGSIZE = -constants.errno.EMSGSIZE;
const ENOBUFS = -constants.errno.ENOBUFS;

/** Stands for Node.js's send request class (the handle's requests are recognised by its name). */
class SendWrap {
  oncomplete?: (status: number, sent: number) => void;
  list?: unknown;
}
type Req = SendWrap;

/** Stands for Node.js's internal UDP handle: send() returns what `answers` says next. */
class UDP {
  calls: { hasCallback: boolean; req: Req }[] = [];
  constructor(readonly answers: number[]) {}
  send(req: Req, list: Uint8Array[], count: number, _port: number, _ip: string, hasCallback: boolean): number {
    assert.equal(count, list.length);
    this.calls.push({ hasCallback, req });
    return this.answers.shift()!;
  }
}

/**
 * A node:dgram socket as far as sending goes: its handle sits behind the "state symbol", and is
 * called as Node.js calls it (or, once `connected`, as for a connected socket, without address,
 * with the state saying so as Node.js's does).
 */
function fakeSocket(handle: object, connected = { now: false }): Socket {
  const state = Symbol("state symbol");
  const socket = {
    [state]: {
      handle,
      get connectState() {
        return connected.now ? 2 : 0;
      },
    },
    send(data: Uint8Array, port: number, ip: string, callback?: (err: Error | null, bytes?: number) => void) {
      const req = new SendWrap();
      if (callback) req.oncomplete = (status, sent) => callback(status < 0 ? new Error(`${status}`) : null, sent);
      const h = handle as { send(...args: unknown[]): number };
      const returned = connected.now
        ? h.send(req, [data], 1, callback !== undefined)
        : h.send(req, [data], 1, port, ip, callback !== undefined);
      if (returned > 0) queueMicrotask(() => callback?.(null, returned - 1));
      else if (returned < 0) queueMicrotask(() => callback?.(Object.assign(new Error("send"), { errno: returned })));
    },
  };
  return socket as unknown as Socket;
}

const literal = () => true;

test("sends with a callback until the handle has answered as Node.js does, then reads its answers", async () => {
  const handle = new UDP([4, 4, 4]);
  const send = dgramSender(fakeSocket(handle), literal);
  const data = new Uint8Array(3);
  assert.equal(await send(data, 9, "127.0.0.1"), 3);
  assert.equal(await send(data, 9, "127.0.0.1"), 3);
  assert.equal(await send(data, 9, "127.0.0.1"), 3);
  // The first with a callback; then none, but the handle is told to report a queued send.
  assert.deepEqual(handle.calls.map((c) => [c.hasCallback, c.req.oncomplete !== undefined]), [
    [true, true],
    [true, false],
    [true, false],
  ]);
  // Sent at once, the direct sends left their request to the next one.
  assert.equal(handle.calls[1]!.req, handle.calls[2]!.req);
});

test("a queued send keeps its request and datagram; the next send has new ones", async () => {
  const handle = new UDP([4, 0, 4]);
  const send = dgramSender(fakeSocket(handle), literal);
  const data = new Uint8Array(3);
  await send(data, 9, "127.0.0.1");
  const queued = send(data, 9, "127.0.0.1");
  const req = handle.calls[1]!.req;
  assert.deepEqual(req.list, [data]);
  assert.equal(await send(data, 9, "127.0.0.1"), 3);
  assert.notEqual(handle.calls[2]!.req, req);
  assert.deepEqual(req.list, [data]);
  req.oncomplete!(0, 3);
  assert.equal(await queued, 3);
});

test("what node:dgram would not pass straight to the handle goes through the public path", async () => {
  const handle = new UDP([4, 4, 4, 4, 4]);
  const socket = fakeSocket(handle);
  const send = dgramSender(socket, literal);
  const data = new Uint8Array(3);
  await send(data, 9, "127.0.0.1");
  await send(data, "9" as unknown as number, "127.0.0.1");
  await send(data, 0, "127.0.0.1");
  await send(new DataView(data.buffer) as unknown as Uint8Array, 9, "127.0.0.1");
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === "state symbol")!;
  (socket as unknown as Record<symbol, { handle: unknown }>)[state]!.handle = null; // closed
  await send(data, 9, "127.0.0.1");
  assert.deepEqual(handle.calls.map((c) => c.req.oncomplete !== undefined), [true, true, true, true, true]);
});

test("read directly, a refusal rejects, and a queued send settles on its completion", async () => {
  const handle = new UDP([4, EMSGSIZE, 0, 0]);
  const send = dgramSender(fakeSocket(handle), literal);
  const data = new Uint8Array(3);
  await send(data, 9, "127.0.0.1");
  await assert.rejects(send(data, 9, "127.0.0.1"), { code: "EMSGSIZE", syscall: "send", port: 9 });
  const queued = send(data, 9, "127.0.0.1");
  handle.calls[2]!.req.oncomplete!(0, 3);
  assert.equal(await queued, 3);
  const failed = send(data, 9, "127.0.0.1");
  handle.calls[3]!.req.oncomplete!(ENOBUFS, 0);
  await assert.rejects(failed, { code: "ENOBUFS" });
});

test("a handle that answers otherwise, or is not Node.js's, keeps the callback", async () => {
  const odd = new UDP([3, 3]); // the length, not length + 1
  const send = dgramSender(fakeSocket(odd), literal);
  const data = new Uint8Array(3);
  await send(data, 9, "127.0.0.1");
  await send(data, 9, "127.0.0.1");
  assert.deepEqual(odd.calls.map((c) => c.hasCallback), [true, true]);

  class Other extends UDP {}
  const other = new Other([4, 4]);
  const sendOther = dgramSender(fakeSocket(other), literal);
  await sendOther(data, 9, "127.0.0.1");
  await sendOther(data, 9, "127.0.0.1");
  assert.deepEqual(other.calls.map((c) => c.hasCallback), [true, true]);
});

test("a handle called otherwise than expected is not used, and nothing is sent twice", async () => {
  const handle = new UDP([4, 4, 4]);
  const connected = { now: false };
  const send = dgramSender(fakeSocket(handle, connected), literal);
  const data = new Uint8Array(3);
  await send(data, 9, "127.0.0.1");
  connected.now = true;
  assert.equal(await send(data, 9, "127.0.0.1"), 3);
  assert.equal(await send(data, 9, "127.0.0.1"), 3);
  assert.equal(handle.calls.length, 3);
  assert.deepEqual(handle.calls.map((c) => c.req.oncomplete !== undefined), [true, true, true]);
});

test("a host name is always sent with a callback", async () => {
  const handle = new UDP([4, 4, 4]);
  const send = dgramSender(fakeSocket(handle), (host) => host !== "localhost");
  const data = new Uint8Array(3);
  await send(data, 9, "127.0.0.1");
  await send(data, 9, "localhost");
  assert.deepEqual(handle.calls.map((c) => c.hasCallback), [true, true]);
});
