// The six measures of issue 4. Each starts polybind's server and the raw one of the same
// runtime in the same run, loads them in turn (polybind, raw, polybind, raw, ...) and returns
// table rows: medians, the ratio polybind/raw, the target and whether it is met.

import { join } from "node:path";
import { conns, udp, wrk } from "./load.mjs";
import { median } from "./report.mjs";
import { startServer } from "./proc.mjs";
import { ROOT } from "./runtimes.mjs";

const SERVERS = join(ROOT, "bench", "servers");

/** The request-rate measures: servers in one mode each, one load. */
export const RATE_MEASURES = [
  { id: "1", measure: "keep-alive, Conn.read/write", unit: "req/s", poly: "rw", raw: "rw", load: "http", min: 0.95 },
  {
    id: "2",
    measure: "keep-alive, Conn.readable/writable",
    unit: "req/s",
    poly: "stream",
    raw: "stream",
    load: "http",
    min: 0.85,
  },
  {
    id: "3",
    measure: "new connections (accept path)",
    unit: "conn/s",
    poly: "close",
    raw: "close",
    load: "close",
    min: 0.95,
  },
  { id: "4", measure: "UDP echo", unit: "dgram/s", poly: "udp", raw: "udp", load: "udp", min: 0.95 },
  // Bun: polybind uses node:dgram (Bun.udpSocket cannot share a port); this row isolates that choice.
  {
    id: "4b",
    measure: "UDP echo, raw = Bun's node:dgram",
    unit: "dgram/s",
    poly: "udp",
    raw: "udpDgram",
    load: "udp",
    only: "bun",
  },
];

function startSide(rt, ctx, script, options) {
  const [cmd, args] = rt.command(join(SERVERS, script), { ...options, maxMs: ctx.serverMaxMs });
  // Loaded at once, each server gets an equal share of the core (a CPU group of its own).
  return startServer(cmd, args, { cpu: ctx.serverCpu, group: ctx.concurrent ? script : undefined });
}

/** What alternate() starts for measures 1 to 5: poly.mjs in `polyMode`, raw.mjs in `rawMode`. */
function servers(rt, ctx, polyMode, rawMode) {
  return (name) =>
    name === "poly"
      ? startSide(rt, ctx, "poly.mjs", { mode: polyMode, lib: rt.lib })
      : startSide(rt, ctx, "raw.mjs", { mode: rawMode });
}

function loader(kind, ctx) {
  const cpu = ctx.loadCpu;
  if (kind === "udp") return (port, seconds) => udp(port, { seconds, cpu });
  return (port, seconds) => wrk(port, { seconds, close: kind === "close", cpu });
}

/**
 * Starts both servers (`start(name)` in `order`), then loads them alternately (polybind, raw,
 * polybind, raw, ...), or with `parallel` both at once (then host noise hits both alike; each
 * gets half the CPUs). `run(server, round, name)` loads one; each side's results are kept in
 * order.
 */
export async function alternate({ start, order = ["poly", "raw"], rounds, run, parallel = false }) {
  const sides = [];
  try {
    for (const name of order) sides.push([name, await start(name)]);
    const results = { poly: [], raw: [] };
    for (let r = 0; r < rounds; r++) {
      if (parallel) {
        const both = await Promise.all(sides.map(([name, server]) => run(server, r, name)));
        sides.forEach(([name], i) => results[name].push(both[i]));
      } else {
        for (const [name, server] of sides) results[name].push(await run(server, r, name));
      }
    }
    return results;
  } finally {
    for (const [, server] of sides) await server.stop();
  }
}

/**
 * One load of `server` (`load()` resolves with `{ value, ops, errors }`), with the server's CPU
 * time per operation and its busy share: near 1 (or its share of the core) the server was the
 * bottleneck; well below, the load generator was.
 */
export async function measured(server, load) {
  const cpu = server.cpuSeconds();
  const start = performance.now();
  const result = await load();
  const used = server.cpuSeconds() - cpu;
  return { ...result, cpuUs: (used * 1e6) / result.ops, busy: used / (performance.now() - start) * 1000 };
}

/**
 * The table row of a rate measure from its counted rounds per side (`measured()` results, warm-up
 * left out): medians, the ratio, CPU per operation, the target; `extra` goes into the details.
 */
export function rateRow(rt, ctx, m, counted, extra = {}) {
  const values = (side) => counted[side].map((x) => x.value);
  const cpuUs = (side) => counted[side].map((x) => x.cpuUs);
  const busy = (side) => median(counted[side].map((x) => x.busy));
  const errors = ["poly", "raw"].flatMap((s) => counted[s].flatMap((x) => x.errors.map((e) => `${s}: ${e}`)));
  // The machine's speed drifts over minutes: compare each polybind load with the raw load
  // that directly followed it, and take the median of those ratios.
  const ratio = median(values("poly").map((p, i) => p / values("raw")[i]));
  return {
    runtime: rt.name,
    id: m.id,
    measure: m.measure,
    unit: m.unit,
    poly: median(values("poly")),
    raw: median(values("raw")),
    ratio,
    // Server CPU time per request: steadier than rates on a noisy machine (>= 1: polybind costs less).
    cpuRatio: median(cpuUs("raw")) / median(cpuUs("poly")),
    target: m.min === undefined ? undefined : `ratio >= ${m.min}`,
    met: m.min === undefined ? undefined : ratio >= m.min && errors.length === 0,
    details: {
      poly: values("poly"),
      raw: values("raw"),
      polyCpuUs: cpuUs("poly"),
      rawCpuUs: cpuUs("raw"),
      polyBusy: busy("poly"),
      rawBusy: busy("raw"),
      share: ctx.share,
      ...extra,
      errors,
    },
  };
}

/** Measures 1 to 4. */
export async function rateMeasure(rt, ctx, m) {
  const load = loader(m.load, ctx);
  const results = await alternate({
    start: servers(rt, ctx, m.poly, m.raw),
    rounds: ctx.rounds + 1,
    parallel: ctx.concurrent,
    // Round 0 warms both servers up and is not counted.
    run: (server, r) => measured(server, () => load(server.info.port, r === 0 ? ctx.warmSeconds : ctx.seconds)),
  });
  return [rateRow(rt, ctx, m, { poly: results.poly.slice(1), raw: results.raw.slice(1) })];
}

/** Each listener's count of answered connections, and whether every connection was answered. */
function shares(result, listeners, connections) {
  const n = Array.from({ length: listeners }, (_, i) => result.bodies[String(i)] ?? 0);
  const total = n.reduce((a, b) => a + b, 0);
  const complete = result.complete && total === connections && result.errors === 0;
  return { counts: n, maxMin: Math.max(...n) / Math.min(...n), complete, rate: result.rate };
}

/** Measure 5: four reuseport listeners, fresh connections, each listener's share. */
export async function balanceMeasure(rt, ctx, caps) {
  const base = {
    runtime: rt.name,
    id: "5",
    measure: `balance, 4 listeners, ${ctx.balanceCount} conns`,
    target: "max/min <= 1.3",
  };
  if (!caps.reusePort.tcp) return [{ ...base, polyText: "n/a (no reuseport)", rawText: "n/a (no reuseport)" }];
  const results = await alternate({
    start: servers(rt, ctx, "balance", "balance"),
    rounds: ctx.balanceRounds,
    run: async (server) =>
      shares(await conns(server.info.port, { count: ctx.balanceCount, cpu: ctx.loadCpu }), 4, ctx.balanceCount),
  });
  const text = (side) => {
    const maxMin = median(results[side].map((x) => x.maxMin));
    const last = results[side].at(-1);
    const pct = last.counts.map((c) => ((100 * c) / ctx.balanceCount).toFixed(1)).join("/");
    return { maxMin, text: `max/min ${maxMin.toFixed(3)} (${pct} %)` };
  };
  const poly = text("poly");
  const raw = text("raw");
  const complete = [...results.poly, ...results.raw].every((x) => x.complete);
  return [{
    ...base,
    poly: poly.maxMin,
    raw: raw.maxMin,
    polyText: poly.text,
    rawText: raw.text,
    met: poly.maxMin <= 1.3 && complete,
    details: { ...results, complete },
  }];
}

const kib = (bytes) => `${bytes >= 0 ? "+" : ""}${Math.round(bytes / 1024)} KiB`;

/** Measure 6: bind cost, and descriptors and memory over create/close cycles. */
export async function bindMeasure(rt, ctx, caps) {
  const options = { reusePort: caps.reusePort.tcp, count: 64, cycles: ctx.cycles, reps: 5 };
  const runs = { poly: [], raw: [] };
  for (let r = 0; r < ctx.bindRounds; r++) {
    for (const side of ["poly", "raw"]) {
      const server = await startSide(rt, ctx, "bindcost.mjs", { ...options, impl: side, lib: rt.lib });
      runs[side].push(server.info);
      await server.stop();
    }
  }
  const bind = (side) => median(runs[side].flatMap((x) => x.bindMs));
  const cycles = (side) => median(runs[side].map((x) => x.cyclesMs));
  const leak = (side) => {
    const fds = Math.max(...runs[side].map((x) => Math.abs(x.again.fds - x.before.fds)));
    const growth = Math.max(...runs[side].map((x) => x.again.heapUsed - x.after.heapUsed));
    const total = Math.max(...runs[side].map((x) => x.again.heapUsed - x.before.heapUsed));
    return { fds, growth, text: `fds ${fds === 0 ? "+0" : `±${fds}`}, heap ${kib(total)} (2nd 1000: ${kib(growth)})` };
  };
  const row = (id, measure, unit, poly, raw) => ({
    runtime: rt.name,
    id,
    measure,
    unit,
    poly,
    raw,
    ratio: poly / raw,
    target: "(time: lower is better)",
  });
  const polyLeak = leak("poly");
  const rawLeak = leak("raw");
  const sockets = caps.reusePort.tcp ? "64 sockets" : "1 shared socket";
  return [
    row("6a", `createListeners(config, 64) [${sockets}]`, "ms", bind("poly"), bind("raw")),
    row("6b", `${ctx.cycles} create/close cycles`, "ms", cycles("poly"), cycles("raw")),
    {
      runtime: rt.name,
      id: "6c",
      measure: `fds and heap after ${2 * ctx.cycles} cycles`,
      polyText: polyLeak.text,
      rawText: rawLeak.text,
      target: "fds +0, heap flat",
      met: polyLeak.fds === 0 && polyLeak.growth < 512 * 1024,
      details: runs,
    },
  ];
}
