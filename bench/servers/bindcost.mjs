// Measure 6, bind cost, in one process: the time to bind 64 listeners at once and to run 1,000
// create/close cycles, and the descriptors and memory before and after the cycles. The JSON
// argument { impl: "poly" | "raw", lib, reusePort, count, cycles, reps, maxMs } picks the side;
// the result is printed as one "READY {...}" line.

import { readdirSync } from "node:fs";
import process from "node:process";
import { bound, collectGarbage, HOST, options, ready, runtime } from "./_common.mjs";

function polyOps(pb) {
  return {
    async bindMany(count) {
      const listeners = await pb.createListeners({ host: HOST, port: 0 }, count);
      return () => Promise.all(listeners.map((l) => l.close()));
    },
    async cycle() {
      const listener = await pb.createListener({ host: HOST, port: 0 });
      await listener.close();
    },
  };
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Open descriptors and memory after two full collections. */
async function snapshot() {
  for (let i = 0; i < 2; i++) {
    collectGarbage();
    await pause(20);
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { fds: readdirSync("/proc/self/fd").length, rss, heapUsed };
}

async function timed(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function runCycles(ops, n) {
  for (let i = 0; i < n; i++) await ops.cycle();
}

const { impl, lib, reusePort, count, cycles, reps, maxMs } = options();
bound(maxMs);
const ops = impl === "poly" ? polyOps(await import(lib)) : await import(`./raw_${runtime()}.mjs`);
const bindMany = () => ops.bindMany(count, reusePort);

let closeAll;
const coldMs = await timed(async () => (closeAll = await bindMany()));
await closeAll();
const bindMs = [];
for (let i = 0; i < reps; i++) {
  bindMs.push(await timed(async () => (closeAll = await bindMany())));
  await closeAll();
}
await runCycles(ops, Math.min(100, cycles));
const before = await snapshot();
const cyclesMs = await timed(() => runCycles(ops, cycles));
const after = await snapshot();
await runCycles(ops, cycles);
const again = await snapshot();
ready({ runtime: runtime(), coldMs, bindMs, cyclesMs, before, after, again });
process.exit(0);
