// capabilities(): the runtime is detected right, and what it reports is what really happens.

import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { capabilities, createListener, createListeners, hasReusePort } from "../mod.ts";
import { exchange, portOf, serveUpper } from "./_helpers.ts";

test("reports the runtime it runs on", () => {
  const caps = capabilities();
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  const expected = g.Deno ? "deno" : g.Bun ? "bun" : "node";
  assert.equal(caps.runtime, expected);
  const version = g.Deno ? g.Deno.version.deno : g.Bun ? g.Bun.version : process.versions.node;
  assert.equal(caps.version, version);
  assert.equal(caps.os, process.platform);
  assert.equal(capabilities(), caps, "probed once, then cached");
  for (const key of ["udp", "unix", "backlog"] as const) assert.equal(typeof caps[key], "boolean");
  assert.equal(hasReusePort(), caps.reusePort.tcp);
});

test("what this runtime supports, as measured", () => {
  const caps = capabilities();
  const g = globalThis as { Deno?: object };
  if (caps.runtime === "node") {
    const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
    const modern = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
    assert.equal(caps.reusePort.tcp, modern && caps.os === "linux");
    assert.equal(caps.backlog, true);
  }
  if (caps.runtime === "deno") {
    const unstable = g.Deno !== undefined && "listenDatagram" in g.Deno;
    assert.equal(caps.udp, unstable);
    assert.equal(caps.reusePort.tcp, unstable && caps.os === "linux");
    assert.equal(caps.reusePort.udp, false, "Deno's UDP reuseAddress is SO_REUSEADDR, which does not balance");
  }
  if (caps.runtime === "bun") {
    assert.equal(caps.backlog, false);
    assert.equal(caps.reusePort.tcp, caps.os === "linux");
  }
});

test("polybind prints nothing", { timeout: 20_000 }, async () => {
  const said: unknown[] = [];
  const methods = ["log", "info", "warn", "error", "debug"] as const;
  const saved = methods.map((m) => console[m]);
  for (const m of methods) console[m] = (...args: unknown[]) => void said.push(args);
  try {
    const listeners = await createListeners({ port: 0 }, 2);
    const serving = listeners.map((l) => serveUpper(l));
    await exchange(portOf(listeners[0]!), "quiet");
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(serving);
    await createListener({ host: "no-such-host.invalid" }).catch(() => {});
  } finally {
    methods.forEach((m, i) => (console[m] = saved[i]!));
  }
  assert.deepEqual(said, []);
});
