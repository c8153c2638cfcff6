// Load: 20,000 connections, each a request and a response, spread over 4 listeners made by
// createListeners (independent SO_REUSEPORT sockets where the kernel balances, shared views
// elsewhere): every one answered, zero errors, no descriptor left open.

import { test } from "node:test";
import assert from "node:assert/strict";
import { capabilities, createListeners } from "../mod.ts";
import { canCountFds, fdTargets, leakedFds } from "../tests/_fd.ts";
import { figure, runClient } from "./_serve.ts";
import { serveLines } from "../tests/_helpers.ts";

const TOTAL = 20_000;
capabilities(); // probed before descriptors are counted: Bun keeps an event loop from its probe

test(`${TOTAL} connections over 4 listeners: every one answered, zero errors`, { timeout: 240_000 }, async () => {
  const before = canCountFds ? fdTargets() : new Map();
  const listeners = await createListeners({ host: "127.0.0.1", port: 0, backlog: 4096 }, 4);
  const port = (listeners[0]!.addr as { port: number }).port;
  const counts = listeners.map(() => ({ count: 0, errors: 0 }));
  const serving = listeners.map((l, i) => serveLines(l, counts[i]));
  const result = await runClient(port, TOTAL, 64);
  await Promise.all(listeners.map((l) => l.close()));
  await Promise.all(serving);
  const kind = capabilities().reusePort.tcp ? "reuseport sockets" : "shared views";
  figure(
    `${result.ok} of ${TOTAL} connections answered in ${(result.ms / 1000).toFixed(1)} s over 4 ${kind} ` +
      `(${counts.map((c) => c.count).join("/")}); errors ${JSON.stringify(result.errors)}`,
  );
  assert.deepEqual(result.errors, {});
  assert.equal(result.ok, TOTAL);
  assert.equal(counts.reduce((sum, c) => sum + c.count, 0), TOTAL, "accepted once each");
  assert.deepEqual(counts.map((c) => c.errors), [0, 0, 0, 0], "no server-side errors");
  if (capabilities().reusePort.tcp) {
    for (const c of counts) {
      assert.ok(
        c.count > TOTAL / 10,
        `the kernel spread the load: ${counts.map((c) => c.count)}`,
      );
    }
  }
  if (canCountFds) {
    assert.deepEqual(await leakedFds(before, 5000), [], "no descriptor left open");
  }
});
