// createListeners: reuseport sockets on one port where the kernel balances, shared views
// elsewhere, and cleanup when a bind fails part-way.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { capabilities, createListener, createListeners, hasReusePort, type Listener, ListenError } from "../mod.ts";
import { type Adapter, adapter, withAdapter } from "../src/_adapter.ts";
import { dial, exchange, portOf, serveUpper } from "./_helpers.ts";

const T = { timeout: 30_000 };

/** Serves every listener, makes `n` sequential connections, and returns each listener's count. */
async function spread(listeners: Listener[], n: number): Promise<number[]> {
  const counts = listeners.map(() => ({ count: 0 }));
  const serving = listeners.map((l, i) => serveUpper(l, counts[i]));
  const port = portOf(listeners[0]!);
  for (let i = 0; i < n; i++) assert.equal(await exchange(port, `r${i}`), `R${i}`);
  await Promise.all(listeners.map((l) => l.close()));
  await Promise.all(serving);
  return counts.map((c) => c.count);
}

describe("createListeners", () => {
  test("count must be a positive integer", T, async () => {
    await assert.rejects(createListeners({ port: 0 }, 0), {
      name: "RangeError",
      message: "count must be >= 1 (got 0)",
    });
    await assert.rejects(createListeners({ port: 0 }, 2.5), RangeError);
  });

  test("count 1 gives one plain listener", T, async () => {
    const [only, ...rest] = await createListeners({ port: 0 }, 1);
    assert.equal(rest.length, 0);
    assert.equal(await spread([only!], 3).then((c) => c[0]), 3);
  });

  test("every listener is on the same port, even with port 0", T, async () => {
    const listeners = await createListeners({ port: 0 }, 3);
    const ports = new Set(listeners.map(portOf));
    assert.equal(ports.size, 1);
    const natives = new Set(listeners.map((l) => l.native));
    assert.equal(natives.size, hasReusePort() ? 3 : 1, "independent sockets exactly where reuseport works");
    const counts = await spread(listeners, 300);
    assert.equal(counts.reduce((a, b) => a + b, 0), 300, "no connection is lost");
    if (hasReusePort()) {
      for (const c of counts) assert.ok(c > 0, `the kernel spread the connections: ${counts}`);
    }
  });

  test("shared: one socket handed out as views that share the load", T, async () => {
    const listeners = await createListeners({ port: 0 }, 2, { shared: true });
    assert.equal(listeners[0]!.native, listeners[1]!.native);
    const counts = await spread(listeners, 50);
    assert.equal(counts[0]! + counts[1]!, 50);
    assert.ok(counts[0]! > 0 && counts[1]! > 0, `both views accepted: ${counts}`);
  });

  test("a shared view closes alone; the socket closes with the last view", T, async () => {
    const [a, b, c] = await createListeners({ port: 0 }, 3, { shared: true });
    const port = portOf(a!);
    await a!.close();
    await assert.rejects(a!.accept(), { code: "ECLOSED" });
    const serving = serveUpper(b!);
    assert.equal(await exchange(port, "after a"), "AFTER A");
    await b!.close();
    await serving;
    const client = await dial(port);
    const conn = await c!.accept();
    conn.close();
    client.destroy();
    await c!.close();
    await assert.rejects(dial(port), { code: "ECONNREFUSED" });
  });

  test("the port is free again after every listener closed", T, async () => {
    const listeners = await createListeners({ port: 0 }, 2);
    const port = portOf(listeners[0]!);
    await Promise.all(listeners.map((l) => l.close()));
    await using again = await createListener({ port });
    assert.equal(portOf(again), port);
  });

  test("a bind failing part-way closes every socket already bound", T, async () => {
    const real = adapter();
    const bound: number[] = [];
    let calls = 0;
    const patched: Adapter = {
      ...real,
      reusePortBinds: () => true,
      probeReusePort: () => Promise.resolve(true),
      os: "linux",
      async listenTcp(opts) {
        // The first call claims the address (a plain bind, closed at once), then the group binds.
        if (++calls === 4) throw Object.assign(new Error("injected"), { code: "EMFILE" });
        const raw = await real.listenTcp({ ...opts, reusePort: real.reusePortBinds("tcp") && opts.reusePort });
        bound.push(raw.addr.port);
        return raw;
      },
    };
    // With real reusePort the injected third bind of the group fails; without, its second fails for real.
    const expected = real.reusePortBinds("tcp") ? { code: "EMFILE", bound: 3 } : { code: "EADDRINUSE", bound: 2 };
    await withAdapter(patched, async () => {
      await assert.rejects(createListeners({ port: 0 }, 4), (err: ListenError) => {
        assert.ok(err instanceof ListenError);
        assert.equal(err.code, expected.code);
        return true;
      });
    });
    assert.equal(bound.length, expected.bound);
    await using again = await createListener({ port: bound[0]! });
    assert.equal(portOf(again), bound[0]);
  });

  test("the multi-listener strategy matches capabilities()", () => {
    assert.equal(hasReusePort(), capabilities().reusePort.tcp);
  });
});
