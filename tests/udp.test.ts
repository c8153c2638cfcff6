// UDP: one socket, several on one port, errors, and the runtimes that cannot do UDP.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { capabilities, createUdpListener, createUdpListeners, type DatagramListener, ListenError } from "../mod.ts";

const T = { timeout: 30_000 };
const udp = capabilities().udp;

/** Echoes datagrams in upper case until closed; counts them. */
async function echo(socket: DatagramListener, counter = { count: 0 }): Promise<void> {
  for await (const [data, from] of socket) {
    counter.count++;
    await socket.send(new TextEncoder().encode(new TextDecoder().decode(data).toUpperCase()), from);
  }
}

/** Sends `text` from a fresh client socket and resolves with the reply. */
async function ask(port: number, text: string, host = "127.0.0.1"): Promise<string> {
  const client: Socket = createSocket(host.includes(":") ? "udp6" : "udp4");
  try {
    const reply = new Promise<string>((resolve) => client.once("message", (m) => resolve(m.toString())));
    client.send(text, port, host);
    return await reply;
  } finally {
    client.close();
  }
}

describe("createUdpListener", { skip: !udp && "UDP is unavailable here; the refusal is tested below" }, () => {
  test("receives and sends datagrams", T, async () => {
    const socket = await createUdpListener({ port: 0 });
    assert.equal(socket.addr.transport, "udp");
    assert.equal(socket.addr.hostname, "127.0.0.1");
    assert.ok(socket.addr.port > 0);
    assert.ok(socket.native);
    const serving = echo(socket);
    assert.equal(await ask(socket.addr.port, "quic"), "QUIC");
    const pending = socket.receive();
    await socket.close();
    await socket.close();
    await serving;
    await assert.rejects(pending, { code: "ECLOSED" });
    await assert.rejects(socket.send(new Uint8Array(1), socket.addr), { code: "ECLOSED" });
  });

  test("sends to a host name, resolved like node:dgram does", T, async () => {
    await using socket = await createUdpListener({ port: 0 });
    const client: Socket = createSocket("udp4");
    try {
      await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", resolve));
      const got = new Promise<string>((resolve) => client.once("message", (m) => resolve(m.toString())));
      const sent = await socket.send(new TextEncoder().encode("named"), {
        transport: "udp",
        hostname: "localhost",
        port: client.address().port,
      });
      assert.equal(sent, 5);
      assert.equal(await got, "named");
    } finally {
      client.close();
    }
  });

  test("a send the OS refuses rejects with its code, and the socket goes on", T, async () => {
    await using socket = await createUdpListener({ port: 0 });
    const serving = echo(socket);
    await assert.rejects(socket.send(new Uint8Array(70_000), socket.addr), { code: "EMSGSIZE" });
    await assert.rejects(socket.send(new Uint8Array(1), { transport: "udp", hostname: "127.0.0.1", port: 0 }));
    assert.equal(await ask(socket.addr.port, "after"), "AFTER");
    await socket.close();
    await serving;
  });

  test("next() and receive() called together take datagrams in call order", T, async () => {
    await using socket = await createUdpListener({ port: 0 });
    const it = socket[Symbol.asyncIterator]();
    const pending = [it.next(), socket.receive(), it.next()];
    const client: Socket = createSocket("udp4");
    try {
      // One at a time: Deno's node:dgram sends a burst of datagrams in reverse order.
      for (const text of ["a", "b", "c"]) {
        await new Promise((resolve) => client.send(text, socket.addr.port, "127.0.0.1", resolve));
      }
      const [first, second, third] = await Promise.all(pending);
      const text = (data: Uint8Array) => new TextDecoder().decode(data);
      assert.equal(text((first as IteratorYieldResult<[Uint8Array, unknown]>).value[0]), "a");
      assert.equal(text((second as [Uint8Array, unknown])[0]), "b");
      assert.equal(text((third as IteratorYieldResult<[Uint8Array, unknown]>).value[0]), "c");
    } finally {
      client.close();
    }
  });

  test("closing ends a waiting iteration and rejects a waiting receive()", T, async () => {
    const socket = await createUdpListener({ port: 0 });
    const it = socket[Symbol.asyncIterator]();
    const step = it.next();
    const received = socket.receive();
    await socket.close();
    assert.deepEqual(await step, { value: undefined, done: true });
    await assert.rejects(received, { code: "ECLOSED" });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });

  test("IPv6", T, async () => {
    await using socket = await createUdpListener({ host: "::1", port: 0 });
    const serving = echo(socket);
    assert.equal(await ask(socket.addr.port, "six", "::1"), "SIX");
    await socket.close();
    await serving;
  });

  test("a second socket on the same port fails with EADDRINUSE", T, async () => {
    await using first = await createUdpListener({ port: 0 });
    await assert.rejects(createUdpListener({ port: first.addr.port }), (err: ListenError) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.code, "EADDRINUSE");
      assert.match(err.message, /already in use/);
      return true;
    });
  });

  test("a Unix path is refused", async () => {
    await assert.rejects(createUdpListener({ uds: "/tmp/x.sock" }), TypeError);
  });
});

describe("createUdpListeners", { skip: !udp && "UDP is unavailable here; the refusal is tested below" }, () => {
  test("count must be a positive integer", async () => {
    await assert.rejects(createUdpListeners({ port: 0 }, 0), { message: "count must be >= 1 (got 0)" });
  });

  test("all on one port; independent sockets exactly where UDP reuseport works", T, async () => {
    const sockets = await createUdpListeners({ port: 0 }, 3);
    assert.equal(new Set(sockets.map((s) => s.addr.port)).size, 1);
    assert.equal(new Set(sockets.map((s) => s.native)).size, capabilities().reusePort.udp ? 3 : 1);
    const counters = sockets.map(() => ({ count: 0 }));
    const serving = sockets.map((s, i) => echo(s, counters[i]));
    const n = 150;
    for (let i = 0; i < n; i++) assert.equal(await ask(sockets[0]!.addr.port, `d${i}`), `D${i}`);
    await Promise.all(sockets.map((s) => s.close()));
    await Promise.all(serving);
    const counts = counters.map((c) => c.count);
    assert.equal(counts.reduce((a, b) => a + b, 0), n, "every datagram answered once");
    for (const c of counts) assert.ok(c > 0, `every socket received some: ${counts}`);
  });

  test("count 1 gives one socket", async () => {
    const [only, ...rest] = await createUdpListeners({ port: 0 }, 1);
    assert.equal(rest.length, 0);
    await only!.close();
  });
});

test("where UDP is unavailable, a ListenError says what is needed", { skip: udp && "UDP works here" }, async () => {
  for (const make of [() => createUdpListener({ port: 0 }), () => createUdpListeners({ port: 0 }, 2)]) {
    await assert.rejects(make(), (err: ListenError) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.code, "ENOTSUP");
      assert.match(err.message, /--unstable-net/);
      return true;
    });
  }
});
