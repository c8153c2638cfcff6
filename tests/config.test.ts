// Pure logic, no sockets: config validation, strategy, error mapping, shared views.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkCount, normalizeConfig } from "../src/_config.ts";
import { errorCode, toListenError } from "../src/_errors.ts";
import { isIPv4, isIPv6 } from "../src/_ip.ts";
import { decideStrategy, type StrategyInput } from "../src/_strategy.ts";
import { ListenError } from "../src/errors.ts";
import { shareSource } from "../src/_shared.ts";

describe("normalizeConfig", () => {
  test("fills in defaults", () => {
    const retry = { attempts: 1, delayMs: 0 };
    assert.deepEqual(normalizeConfig({}, "linux"), {
      kind: "inet",
      host: "127.0.0.1",
      port: 8000,
      backlog: 2048,
      retry,
    });
    assert.deepEqual(normalizeConfig({ uds: "/tmp/a.sock" }, "linux"), {
      kind: "unix",
      path: "/tmp/a.sock",
      abstract: false,
      backlog: 2048,
      mode: 0o660,
      retry,
    });
  });

  test("uds with host and port is a RangeError naming both", () => {
    assert.throws(
      () => normalizeConfig({ uds: "/tmp/x", host: "::1", port: 1 }, "linux"),
      /'uds' and 'host' both say where to listen: current values are "\/tmp\/x" and "::1"/,
    );
  });

  const bad: [string, Record<string, unknown>, typeof RangeError | typeof TypeError, RegExp][] = [
    ["negative port", { port: -1 }, RangeError, /'port' must be an integer from 0 to 65535: current value is -1/],
    ["port too big", { port: 65536 }, RangeError, /'port'.*65536/],
    ["fractional port", { port: 80.5 }, RangeError, /'port'.*80\.5/],
    ["NaN port", { port: NaN }, RangeError, /'port'.*NaN/],
    ["string port", { port: "80" }, TypeError, /'port' must be a number: current value is "80"/],
    ["zero backlog", { backlog: 0 }, RangeError, /'backlog'.*current value is 0/],
    ["huge backlog", { backlog: 1e9 }, RangeError, /'backlog'.*1000000000/],
    ["udsMode too big", { uds: "/tmp/a", udsMode: 0o1000 }, RangeError, /'udsMode'.*512/],
    ["negative udsMode", { uds: "/tmp/a", udsMode: -1 }, RangeError, /'udsMode'.*-1/],
    ["empty host", { host: "" }, RangeError, /'host'.*""/],
    [
      "bad IPv4",
      { host: "127.0.0.300" },
      RangeError,
      /'host' is not a valid IPv4 address: current value is "127.0.0.300"/,
    ],
    ["bad IPv6", { host: "::g" }, RangeError, /'host' is not a valid IPv6 address: current value is "::g"/],
    ["host not a string", { host: 1 }, TypeError, /'host' must be a string: current value is 1/],
    ["empty uds", { uds: "" }, RangeError, /'uds'.*""/],
    ["uds not a string", { uds: 5 }, TypeError, /'uds'.*5/],
  ];
  for (const [name, config, type, message] of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(() => normalizeConfig(config, "linux"), (err: Error) => {
        assert.ok(err instanceof type, `${err.name}: ${err.message}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  test("a Unix path over the OS limit is refused before anything is created", () => {
    const path = "/tmp/" + "x".repeat(103);
    assert.equal(new TextEncoder().encode(path).length, 108);
    assert.throws(() => normalizeConfig({ uds: path }, "linux"), /108 bytes long, over the 107-byte limit of linux/);
    assert.doesNotThrow(() => normalizeConfig({ uds: path.slice(0, 107) }, "linux"));
    assert.throws(() => normalizeConfig({ uds: path.slice(0, 104) }, "darwin"), /over the 103-byte limit of darwin/);
  });
});

test("checkCount", () => {
  assert.throws(() => checkCount(0), { name: "RangeError", message: "count must be >= 1 (got 0)" });
  assert.throws(() => checkCount(-2), { name: "RangeError", message: "count must be >= 1 (got -2)" });
  assert.throws(() => checkCount(1.5), RangeError);
  assert.throws(() => checkCount(NaN), RangeError);
  assert.throws(() => checkCount(100000), /count must be <= 1024 \(got 100000\)/);
  assert.throws(() => checkCount("2"), TypeError);
  assert.equal(checkCount(4), 4);
});

test("IP address literals", () => {
  for (const ip of ["0.0.0.0", "127.0.0.1", "255.255.255.255"]) assert.ok(isIPv4(ip), ip);
  for (const ip of ["1.2.3", "01.2.3.4", "256.1.1.1", "a.b.c.d"]) assert.ok(!isIPv4(ip), ip);
  for (const ip of ["::", "::1", "fe80::1%eth0", "2001:db8::8a2e:370:7334", "::ffff:127.0.0.1", "1:2:3:4:5:6:7:8"]) {
    assert.ok(isIPv6(ip), ip);
  }
  for (const ip of ["1:2:3:4:5:6:7:8:9", ":::", "1::2::3", "g::1", "fe80::1%"]) assert.ok(!isIPv6(ip), ip);
});

describe("decideStrategy: the one decision of listeners, UDP, pairs and plans", () => {
  const caps = {
    runtime: "node" as const,
    version: "20.0.0",
    os: "linux",
    reusePort: { tcp: true, udp: false },
    udp: true,
    unix: true,
    backlog: true,
    processShare: true,
    lendReusePort: true,
    migrateReq: false,
  };
  const base: StrategyInput = {
    placement: "inet",
    transport: "tcp",
    count: 4,
    shared: false,
    across: "views",
    caps,
    missing: "Node.js 20 ignores reusePort",
  };
  test("one listener is single", () => {
    assert.deepEqual(decideStrategy({ ...base, count: 1 }), {
      strategy: "single",
      workers: 1,
      reason: "one TCP listener: one socket",
    });
  });
  test("reuseport where the kernel balances, for the transport asked", () => {
    assert.deepEqual(decideStrategy(base), {
      strategy: "reuseport",
      workers: 4,
      reason: "SO_REUSEPORT on linux: each of 4 TCP listeners binds its own socket, the kernel balances",
    });
    assert.equal(decideStrategy({ ...base, transport: "udp" }).strategy, "shared");
  });
  test("shared when asked, for Unix sockets, and without reuseport", () => {
    assert.equal(decideStrategy({ ...base, shared: true }).strategy, "shared");
    assert.match(decideStrategy({ ...base, placement: "unix" }).reason, /a Unix socket cannot be reused/);
    const off = { ...caps, reusePort: { tcp: false, udp: false } };
    assert.deepEqual(decideStrategy({ ...base, caps: off }), {
      strategy: "shared",
      workers: 4,
      reason: "SO_REUSEPORT unavailable on node 20.0.0 (Node.js 20 ignores reusePort): one socket for 4 TCP listeners",
    });
    assert.equal(
      decideStrategy({ ...base, caps: { ...off, os: "darwin" } }).reason,
      "SO_REUSEPORT does not balance load on darwin: one socket for 4 TCP listeners",
    );
  });
  test("across processes, a socket that cannot be handed over leaves one worker", () => {
    const processes = { ...base, across: "processes" as const, placement: "unix" as const };
    assert.equal(decideStrategy(processes).strategy, "shared");
    assert.deepEqual(decideStrategy({ ...processes, caps: { ...caps, processShare: false } }), {
      strategy: "single",
      workers: 1,
      reason: "a Unix socket cannot be reused, and node cannot hand a socket to other processes: one accepting worker",
    });
  });
  test("lent to processes: one SO_REUSEPORT socket each where the runtime can lend those, else one shared", () => {
    const lend = { ...base, across: "processes" as const, lend: true };
    assert.deepEqual(decideStrategy(lend), {
      strategy: "reuseport",
      workers: 4,
      lent: true,
      reason:
        "SO_REUSEPORT on linux: this process binds a socket for each of 4 workers (it accepts nothing itself) and lends it to every generation for the server's whole life, the kernel balances",
    });
    assert.deepEqual(decideStrategy({ ...lend, caps: { ...caps, lendReusePort: false } }), {
      strategy: "shared",
      workers: 4,
      reason:
        "node 20.0.0 cannot lend SO_REUSEPORT sockets: this process holds one socket (it accepts nothing itself) and lends it to the 4 worker processes for the server's whole life",
    });
    // Asked to share, a Unix socket, or one worker: one socket, lent all the same.
    assert.equal(decideStrategy({ ...lend, shared: true }).strategy, "shared");
    assert.match(
      decideStrategy({ ...lend, placement: "unix" }).reason,
      /^a Unix socket cannot be reused: this process holds/,
    );
    assert.deepEqual(decideStrategy({ ...lend, count: 1 }), {
      strategy: "shared",
      workers: 1,
      reason:
        "one worker process: this process holds one socket (it accepts nothing itself) and lends it to it for the server's whole life",
    });
    // Threads share this process's sockets: nothing is lent to them.
    assert.equal(decideStrategy({ ...lend, across: "views" }).lent, undefined);
  });

  test("inherited sockets in one group for each worker (a predecessor's): each its own group", () => {
    const handed = { ...base, across: "processes" as const, lend: true, placement: "inherited" as const };
    const grouped = { ...handed, perWorker: true };
    assert.deepEqual(decideStrategy(grouped), {
      strategy: "reuseport",
      workers: 4,
      lent: true,
      reason:
        "inherited SO_REUSEPORT sockets in one group for each of 4 workers: this process lends each group to every generation of its worker for the server's whole life, the kernel balances",
    });
    // It needs no SO_REUSEPORT of this runtime's: the sockets have it already.
    assert.equal(decideStrategy({ ...grouped, caps: { ...caps, lendReusePort: false } }).lent, true);
    // Not grouped, asked to share, not lent, or one worker: the one shared way.
    for (const other of [handed, { ...grouped, shared: true }, { ...grouped, lend: false }, { ...grouped, count: 1 }]) {
      assert.equal(decideStrategy(other).strategy, "shared", JSON.stringify(other));
      assert.equal(decideStrategy(other).lent, undefined);
    }
  });
});

describe("errors", () => {
  test("codes from Node-style, Deno-style and message-only errors", () => {
    assert.equal(errorCode(Object.assign(new Error("x"), { code: "EADDRINUSE" })), "EADDRINUSE");
    assert.equal(errorCode(Object.assign(new Error("x"), { name: "PermissionDenied" })), "EACCES");
    assert.equal(errorCode(new Error("Address already in use (os error 98)")), "EADDRINUSE");
    assert.equal(errorCode("weird"), "EUNKNOWN");
  });
  test("hints a person can act on", () => {
    const inUse = toListenError(Object.assign(new Error("x"), { code: "EADDRINUSE" }), "127.0.0.1:8000");
    assert.ok(inUse instanceof ListenError);
    assert.equal(inUse.message, "Address 127.0.0.1:8000 is already in use. Is another server running?");
    assert.equal(inUse.address, "127.0.0.1:8000");
    const denied = toListenError(Object.assign(new Error("x"), { code: "EACCES" }), "127.0.0.1:80");
    assert.equal(
      denied.message,
      "Permission denied binding to 127.0.0.1:80. Try a port > 1024 or run with elevated permissions.",
    );
    const other = new Error("boom");
    const kept = toListenError(Object.assign(other, { code: "EMFILE" }), "127.0.0.1:1");
    assert.equal(kept.code, "EMFILE");
    assert.equal(kept.cause, other);
  });
});

describe("shareSource", () => {
  function counter() {
    let next = 0;
    let closed = 0;
    const pending: ((n: number) => void)[] = [];
    return {
      source: {
        take: () => new Promise<number>((resolve) => pending.push(resolve)),
        close: () => {
          closed++;
          return Promise.resolve();
        },
      },
      emit: () => pending.shift()?.(next++),
      get closed() {
        return closed;
      },
    };
  }
  const closedError = () => new Error("closed");

  test("items go to waiting views in turn, one take at a time", async () => {
    const c = counter();
    const [a, b] = shareSource(c.source, 2, closedError, () => {});
    const pa = a!.next();
    const pb = b!.next();
    c.emit();
    await Promise.resolve();
    await Promise.resolve();
    c.emit();
    assert.deepEqual(await Promise.all([pa, pb]), [0, 1]);
    await a!.close();
    await b!.close();
  });

  test("the source closes only with the last view, and a closed view rejects", async () => {
    const c = counter();
    const views = shareSource(c.source, 3, closedError, () => {});
    const pending = views[0]!.next();
    await views[0]!.close();
    await assert.rejects(pending, /closed/);
    await assert.rejects(views[0]!.next(), /closed/);
    await views[0]!.close();
    assert.equal(c.closed, 0);
    await views[1]!.close();
    assert.equal(c.closed, 0);
    await views[2]!.close();
    assert.equal(c.closed, 1);
  });

  test("a sole view's takeWith: at once where an item is queued, in turn behind a next(), and closed", async () => {
    const queued = [0, 1];
    let waiting: ((n: number) => void) | undefined;
    const discarded: number[] = [];
    const source = {
      take: () =>
        queued.length > 0 ? Promise.resolve(queued.shift()!) : new Promise<number>((resolve) => waiting = resolve),
      takeWith(ok: (n: number) => void) {
        if (queued.length > 0) ok(queued.shift()!);
        else waiting = ok;
      },
      close: () => Promise.resolve(),
    };
    const [view] = shareSource(source, 1, closedError, (n) => discarded.push(n));
    const got: unknown[] = [];
    const fail = (err: unknown) => got.push(err);
    view!.takeWith!((n) => got.push(n), fail);
    assert.deepEqual(got, [0], "called before takeWith returned");
    const first = view!.next();
    const second = new Promise((resolve) => view!.takeWith!(resolve, fail));
    assert.equal(await first, 1);
    waiting!(2);
    assert.equal(await second, 2, "after the next() that was waiting");
    view!.takeWith!((n) => got.push(n), fail);
    await view!.close();
    waiting!(3);
    assert.deepEqual(discarded, [3]);
    assert.match(String(got[1]), /closed/);
    view!.takeWith!((n) => got.push(n), fail);
    assert.match(String(got[2]), /closed/);
  });

  test("an item that arrives for a view that left goes to the next caller", async () => {
    const c = counter();
    const [a, b] = shareSource(c.source, 2, closedError, () => {});
    const lost = a!.next();
    await a!.close();
    await assert.rejects(lost);
    c.emit();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(await b!.next(), 0);
    await b!.close();
  });
});
