// Closing one of four reuseport listeners under load: Linux drops the connections waiting in the
// closed socket's accept queue (unless net.ipv4.tcp_migrate_req=1, Linux 5.14+); shared views
// drop none. Measured two ways: a listener that stopped accepting, and a busy one closed mid-load.

import { test } from "node:test";
import assert from "node:assert/strict";
import { capabilities, createListeners } from "../mod.ts";
import { figure, migrateReq, runClient } from "./_serve.ts";
import { openClients, serveLines } from "../tests/_helpers.ts";

const reusePort = capabilities().reusePort.tcp;
const kind = reusePort ? "reuseport sockets" : "shared views";

test("a listener that stopped accepting is closed with its queue full", { timeout: 120_000 }, async () => {
  const listeners = await createListeners({ host: "127.0.0.1", port: 0, backlog: 4096 }, 4);
  const port = (listeners[0]!.addr as { port: number }).port;
  const serving = listeners.slice(1).map((l) => serveLines(l));
  const n = 2000;
  const replies = await openClients(port, n, (socket, i) => socket.write(`ping ${i}\n`));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await listeners[0]!.close();
  const results = await Promise.all(replies);
  const answered = results.filter((r) => r.startsWith("OK")).length;
  const dropped = n - answered;
  figure(
    `closing 1 of 4 ${kind} that stopped accepting: ${dropped} of ${n} connections dropped ` +
      `(${(100 * dropped / n).toFixed(1)}%; tcp_migrate_req=${migrateReq()})`,
  );
  assert.deepEqual(results.filter((r) => !r.startsWith("OK") && !/^(closed|error ECONNRESET)$/.test(r)), []);
  if (!reusePort) assert.equal(dropped, 0);
  await Promise.all(listeners.map((l) => l.close()));
  await Promise.all(serving);
});

test("a busy listener closed in the middle of the load", { timeout: 120_000 }, async () => {
  const listeners = await createListeners({ host: "127.0.0.1", port: 0, backlog: 4096 }, 4);
  const port = (listeners[0]!.addr as { port: number }).port;
  const serving = listeners.map((l) => serveLines(l));
  const total = 10_000;
  let closing: Promise<void> | undefined;
  const result = await runClient(port, total, 128, (done) => {
    if (done >= total / 3) closing ??= listeners[0]!.close();
  });
  await closing;
  const dropped = total - result.ok;
  figure(
    `closing 1 of 4 busy ${kind} mid-load: ${dropped} of ${total} connections dropped ` +
      `(${JSON.stringify(result.errors)}; tcp_migrate_req=${migrateReq()})`,
  );
  const unexpected = Object.keys(result.errors).filter((e) => !["ECONNRESET", "closed", "EPIPE"].includes(e));
  assert.deepEqual(unexpected, [], JSON.stringify(result.errors));
  if (!reusePort) assert.equal(dropped, 0, "closing a shared view drops nothing");
  await Promise.all(listeners.map((l) => l.close()));
  await Promise.all(serving);
});
