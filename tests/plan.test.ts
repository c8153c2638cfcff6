// Worker plans: the pure decision for every runtime and platform, and plans made real in-process.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type Capabilities,
  capabilities,
  checkPlan,
  createListener,
  listenFromPlan,
  planListeners,
  preparePlan,
} from "../mod.ts";
import { decideHandover } from "../src/_strategy.ts";
import { exchange, portOf, serveUpper } from "./_helpers.ts";

const T = { timeout: 30_000 };

function caps(runtime: "deno" | "bun" | "node", os: string, tcp: boolean, processShare: boolean): Capabilities {
  return {
    runtime,
    version: "1.0.0",
    os,
    reusePort: { tcp, udp: tcp },
    udp: true,
    unix: os !== "win32",
    backlog: true,
    processShare,
    lendReusePort: processShare && tcp && os === "linux",
    migrateReq: false,
  };
}

describe("planListeners (pure)", () => {
  const cases: [string, Capabilities, boolean, string, number, RegExp][] = [
    ["node 24 on linux", caps("node", "linux", true, true), false, "reuseport", 4, /SO_REUSEPORT on linux/],
    ["node 20 on linux", caps("node", "linux", false, true), false, "shared", 4, /unavailable on node 1\.0\.0/],
    ["node on darwin", caps("node", "darwin", false, true), false, "shared", 4, /does not balance load on darwin/],
    ["node on win32", caps("node", "win32", false, true), false, "shared", 4, /does not balance load on win32/],
    ["node, shared asked", caps("node", "linux", true, true), true, "shared", 4, /shared was asked for/],
    ["bun on linux", caps("bun", "linux", true, false), false, "reuseport", 4, /each of 4 workers/],
    ["bun on darwin", caps("bun", "darwin", false, false), false, "single", 1, /bun cannot hand a socket/],
    ["deno with --unstable-net", caps("deno", "linux", true, false), false, "reuseport", 4, /SO_REUSEPORT/],
    ["deno without --unstable-net", caps("deno", "linux", false, false), false, "single", 1, /one accepting worker/],
    ["deno on darwin", caps("deno", "darwin", false, false), false, "single", 1, /darwin.*deno cannot/],
    ["deno, shared asked", caps("deno", "linux", true, false), true, "single", 1, /shared was asked for/],
  ];
  for (const [name, c, shared, strategy, workers, reason] of cases) {
    test(name, () => {
      const plan = planListeners({ port: 8000 }, 4, { capabilities: c, shared });
      assert.equal(plan.strategy, strategy);
      assert.equal(plan.workers, workers);
      assert.equal(plan.requested, 4);
      assert.match(plan.reason, reason);
      assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan, "plain JSON");
      assert.deepEqual(planListeners({ port: 8000 }, 4, { capabilities: c, shared }), plan, "the same every time");
    });
  }

  test("one worker is single; Unix sockets are never reuseport", () => {
    const c = caps("node", "linux", true, true);
    assert.equal(planListeners({}, 1, { capabilities: c }).strategy, "single");
    const unix = planListeners({ uds: "/tmp/a.sock" }, 3, { capabilities: c });
    assert.equal(unix.strategy, "shared");
    assert.deepEqual(unix.address, { transport: "unix", path: "/tmp/a.sock" });
    assert.equal(
      planListeners({ uds: "/tmp/a.sock" }, 3, { capabilities: caps("bun", "linux", true, false) }).workers,
      1,
    );
  });

  test("bad input is refused like the listeners refuse it", () => {
    assert.throws(() => planListeners({ port: 0 }, 0), { message: "count must be >= 1 (got 0)" });
    assert.throws(() => planListeners({ port: -1 }, 2), RangeError);
    assert.throws(() => checkPlan({ kind: "other" }), TypeError);
  });
});

describe("preparePlan and listenFromPlan (in one process)", () => {
  test("the prepared plan has the resolved port; workers join it", T, async () => {
    const prepared = await preparePlan(planListeners({ host: "localhost", port: 0 }, 2));
    const { plan } = prepared;
    assert.equal(plan.prepared, true);
    assert.ok(plan.address.transport === "tcp" && plan.address.port > 0);
    assert.ok(plan.address.transport === "tcp" && /^(127\.0\.0\.1|::1)$/.test(plan.address.hostname));
    if (plan.strategy !== "reuseport") {
      await prepared.close();
      return;
    }
    const listeners = [await listenFromPlan(plan, 0), await listenFromPlan(plan, 1)];
    await prepared.release();
    const counts = [{ count: 0 }, { count: 0 }];
    const serving = listeners.map((l, i) => serveUpper(l, counts[i]));
    for (let i = 0; i < 100; i++) assert.equal(await exchange(plan.address.port, "w"), "W");
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(serving);
    await prepared.close();
    assert.equal(counts[0]!.count + counts[1]!.count, 100);
    assert.ok(counts[0]!.count > 0 && counts[1]!.count > 0, JSON.stringify(counts));
  });

  test("a single plan: worker 0 listens, other indexes are refused with the reason", T, async () => {
    const prepared = await preparePlan(planListeners({ port: 0 }, 1));
    const listener = await listenFromPlan(prepared.plan, 0);
    await assert.rejects(listenFromPlan(prepared.plan, 1), /'index' must be an integer from 0 to 0/);
    await listener.close();
    await prepared.close();
  });

  test("an address in use fails in the primary, before any worker", T, async () => {
    const first = await preparePlan(planListeners({ port: 0 }, 1));
    const port = first.plan.address.transport === "tcp" ? first.plan.address.port : 0;
    const held = await listenFromPlan(first.plan, 0);
    try {
      await assert.rejects(preparePlan(planListeners({ port }, 2, { shared: true })), { code: "EADDRINUSE" });
    } finally {
      await held.close();
      await first.close();
    }
  });

  test("a lent plan: a SO_REUSEPORT socket for each worker, none listening, the port claimed first", T, async () => {
    const plan = planListeners({ host: "127.0.0.1", port: 0 }, 2, { lend: true });
    if (!capabilities().lendReusePort) {
      assert.equal(plan.lent, undefined);
      assert.equal(plan.strategy, capabilities().processShare ? "shared" : "single");
      return;
    }
    assert.equal(plan.strategy, "reuseport");
    assert.equal(plan.lent, true);
    const prepared = await preparePlan(plan);
    const port = prepared.plan.address.transport === "tcp" ? prepared.plan.address.port : 0;
    try {
      assert.equal(prepared.plan.sockets, 1);
      const [first, second] = [prepared.descriptors(0), prepared.descriptors(1)];
      assert.equal(first.length, 1);
      assert.equal(second.length, 1);
      assert.notEqual(first[0]!.key, second[0]!.key);
      assert.deepEqual(prepared.descriptors().map((d) => d.key), [first[0]!.key, second[0]!.key]);
      // Bound, not listening: the primary accepts nothing itself.
      await assert.rejects(exchange(port, "x"), { code: "ECONNREFUSED" });
    } finally {
      await prepared.close();
    }
    // The address is claimed like any plan's: one a server listens on fails before any worker.
    const live = await createListener({ host: "127.0.0.1", port: 0 });
    try {
      const taken = planListeners({ host: "127.0.0.1", port: portOf(live) }, 2, { lend: true });
      await assert.rejects(preparePlan(taken), { code: "EADDRINUSE" });
    } finally {
      await live.close();
    }
  });

  test("the reason of this runtime's plan matches its capabilities", () => {
    const plan = planListeners({ port: 8000 }, 4);
    const c = capabilities();
    assert.equal(plan.strategy === "reuseport", c.reusePort.tcp);
  });
});

describe("the handover of a supervisor's generations (pure)", () => {
  const at = (c: Capabilities, migrateReq: boolean): Capabilities => ({ ...c, migrateReq });
  const cases: [string, Capabilities, boolean, boolean, "lend" | "beside", RegExp][] = [
    ["node 20, tcp_migrate_req 0", at(caps("node", "linux", false, true), false), false, false, "lend", /is 0/],
    ["node 24, tcp_migrate_req 1", at(caps("node", "linux", true, true), true), true, false, "beside", /is 1/],
    ["deno, tcp_migrate_req 0", at(caps("deno", "linux", true, true), false), true, true, "lend", /resets/],
    ["deno, tcp_migrate_req 1", at(caps("deno", "linux", true, true), true), true, true, "lend", /own server closes/],
    [
      "bun on musl, tcp_migrate_req 1",
      at(caps("bun", "linux", true, false), true),
      true,
      true,
      "beside",
      /cannot lend/,
    ],
    ["bun on musl, tcp_migrate_req 0", at(caps("bun", "linux", true, false), false), true, true, "beside", /may reset/],
  ];
  for (const [name, c, reusePort, ownServer, handover, reason] of cases) {
    test(name, () => {
      const choice = decideHandover(c, reusePort, "auto", ownServer);
      assert.equal(choice.handover, handover);
      assert.match(choice.reason, reason);
    });
  }
  test("one asked for where it cannot be had: a RangeError that says why", () => {
    assert.throws(
      () => decideHandover(caps("bun", "darwin", false, false), false, "lend", true),
      /cannot hand a socket/,
    );
    assert.throws(() => decideHandover(caps("node", "linux", false, true), false, "beside", false), /SO_REUSEPORT/);
    const asked = decideHandover(caps("deno", "linux", true, true), true, "beside", true);
    assert.equal(asked.handover, "beside");
    assert.match(asked.reason, /may reset connections queued/);
  });
});
