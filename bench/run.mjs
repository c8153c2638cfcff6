// `npm run bench`: polybind against hand-written code on each runtime's own API (Deno.listen,
// Bun.listen, node:net, node:dgram), on Deno, Bun, Node.js 20 and Node.js 24. Prints one
// table and writes it as JSON under bench/results/ (see BENCHMARKS.md). Measure 7 is polybind
// against itself: with a PROXY v2 header on each connection against without (bench/lib/proxy.mjs).
//
//   node bench/run.mjs [--quick] [--runtimes deno,bun,node20,node24] [--measures 1,2,3,4,5,6,7]
//                      [--rounds N] [--seconds S] [--out file.json] [--compare earlier.json] [--no-pin]
//                      [--lib path/to/another/polybind/checkout] [--concurrent [--cap F]] [--pairs N]

import { copyFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { ensureWrk } from "./lib/load.mjs";
import { balanceMeasure, bindMeasure, RATE_MEASURES, rateMeasure } from "./lib/measures.mjs";
import { PROXY_MEASURES, proxyMeasure } from "./lib/proxy.mjs";
import { benchGroups, pairsOption, startServer } from "./lib/proc.mjs";
import { compare, fmt, machine, SATURATED, table, unsaturated, writeJson } from "./lib/report.mjs";
import { buildForNode, describeRuntimes, ROOT, RUNTIME_NAMES } from "./lib/runtimes.mjs";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runtimes: { type: "string", default: RUNTIME_NAMES.join(",") },
    measures: { type: "string", default: "1,2,3,4,5,6,7" },
    rounds: { type: "string" },
    seconds: { type: "string" },
    out: { type: "string" },
    compare: { type: "string" },
    "no-pin": { type: "boolean", default: false },
    lib: { type: "string" },
    concurrent: { type: "boolean", default: false },
    cap: { type: "string" },
    pairs: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  process.stdout.write(
    "usage: node bench/run.mjs [--quick] [--runtimes deno,bun,node20,node24] [--measures 1,2,3,4,5,6]\n" +
      "                          [--rounds N] [--seconds S] [--out file.json] [--compare earlier.json] [--no-pin]\n" +
      "                          [--lib path/to/another/polybind/checkout] [--concurrent [--cap F]] [--pairs N]\n",
  );
  process.exit(0);
}

const quick = args.quick;
const pin = !args["no-pin"] && availableParallelism() >= 2;
const ctx = {
  rounds: Number(args.rounds ?? (quick ? 4 : 8)),
  seconds: Number(args.seconds ?? (quick ? 1 : 2)),
  warmSeconds: 1,
  balanceCount: 20_000,
  balanceRounds: quick ? 1 : 3,
  bindRounds: quick ? 1 : 3,
  cycles: 1000,
  // Servers on CPU 0, load generators on CPU 1: both sides get the same share of the machine.
  serverCpu: pin ? 0 : undefined,
  loadCpu: pin ? 1 : undefined,
  serverMaxMs: 10 * 60_000,
  // Measures 1 to 4 and 7 with both servers loaded at once, each in a CPU group of equal weight,
  // instead of in turn (the host's slow moments then hit both alike).
  concurrent: args.concurrent,
  // With --concurrent, at most this fraction of a CPU for each server (cgroup.mjs), where the
  // load generator cannot keep both busy otherwise (new connections through wrk's Lua).
  cap: args.cap === undefined ? undefined : Number(args.cap),
  // Measure 7: pairs of servers started one after the other, ctx.rounds rounds each.
  pairs: pairsOption(args.pairs),
};
if (ctx.cap !== undefined && !(ctx.concurrent && ctx.cap > 0 && ctx.cap <= 1)) {
  throw new RangeError(`--cap must be a fraction of a CPU in (0, 1] and goes with --concurrent: ${args.cap}`);
}
// The CPU a server can have: a core in turn; at once, half of CPU 0 or its group's cap.
ctx.share = ctx.concurrent ? Math.min(ctx.cap ?? 0.5, 0.5) : 1;
// Round 0 warms a server up with as much CPU time as in turn (Bun's first counted round was
// 20-30 % slow after 1 s at a cap of 0.3).
ctx.warmSeconds = Math.ceil(ctx.warmSeconds / ctx.share);
const wanted = new Set(args.measures.split(","));
const names = args.runtimes.split(",");
for (const n of names) if (!RUNTIME_NAMES.includes(n)) throw new RangeError(`Unknown runtime: ${n}`);

const log = (line) => process.stderr.write(`${line}\n`);

/** Asks polybind on this runtime what it can do (reusePort decides measures 5 and 6). */
async function capabilitiesOf(rt) {
  const [cmd, argv] = rt.command(join(ROOT, "bench", "servers", "poly.mjs"), {
    mode: "caps",
    lib: rt.lib,
    maxMs: 60_000,
  });
  const server = await startServer(cmd, argv);
  await server.stop();
  return server.info.caps;
}

async function benchRuntime(rt) {
  const caps = await capabilitiesOf(rt);
  log(`\n== ${rt.name} ${rt.version}: reusePort tcp ${caps.reusePort.tcp}, udp ${caps.udp}`);
  const rows = [];
  const add = (found) => {
    for (const r of found) {
      rows.push(r);
      const ratio = r.ratio === undefined ? "" : `  ratio ${r.ratio.toFixed(3)}`;
      log(`${r.runtime} ${r.id} ${r.measure}: ${r.polyText ?? fmt(r.poly)} | ${r.rawText ?? fmt(r.raw)}${ratio}`);
    }
  };
  for (const m of RATE_MEASURES) {
    if (!wanted.has(m.id.replace(/[a-z]$/, "")) || (m.only && m.only !== rt.name)) continue;
    if (m.load === "udp" && !caps.udp) continue;
    add(await rateMeasure(rt, ctx, m));
  }
  if (wanted.has("5")) add(await balanceMeasure(rt, ctx, caps));
  if (wanted.has("6")) add(await bindMeasure(rt, ctx, caps));
  // 7: the cost of a PROXY v2 header (with the header against without, both polybind).
  // (--measures 7 runs 7a to 7d, --measures 7d that one alone.)
  for (const m of PROXY_MEASURES) if (wanted.has("7") || wanted.has(m.id)) add(await proxyMeasure(rt, ctx, m));
  return rows;
}

const started = new Date();
if (ctx.concurrent) {
  const { why } = benchGroups(ctx.cap);
  if (why) log(`warning: no CPU group per server (${why}): servers loaded at once share CPU by thread`);
}
if ([...wanted].some((m) => ["1", "2", "3", "7"].includes(m[0]))) ensureWrk();
const libRoot = resolve(args.lib ?? ROOT);
const nodeLib = names.some((n) => n.startsWith("node")) ? buildForNode(libRoot) : undefined;
const runtimes = describeRuntimes(names, libRoot, nodeLib);
const loadBefore = loadavg();
log(
  `polybind bench: ${ctx.rounds} rounds x ${ctx.seconds} s per side and measure, ` +
    `${ctx.concurrent ? "both sides at once" : "sides in turn"}, CPU pinning ${pin ? "on" : "off"}` +
    (ctx.cap === undefined ? "" : `, each server capped at ${ctx.cap} CPU`),
);
if (loadBefore[0] > 0.5) log(`warning: load average is ${loadBefore[0].toFixed(2)}: other work will add noise`);

const rows = [];
for (const rt of runtimes) rows.push(...(await benchRuntime(rt)));

const run = {
  date: started.toISOString(),
  minutes: (Date.now() - started.getTime()) / 60_000,
  machine: machine(),
  loadavg: { before: loadBefore, after: loadavg() },
  options: { quick, lib: libRoot, ...ctx },
  runtimes: Object.fromEntries(runtimes.map((rt) => [rt.name, rt.version])),
  rows,
};
const out = args.out ?? join(ROOT, "bench", "results", `${started.toISOString().replace(/[:.]/g, "-")}.json`);
writeJson(out, run);
if (args.out === undefined) copyFileSync(out, join(ROOT, "bench", "results", "latest.json"));

process.stdout.write(`\n${table(rows)}\n\n`);
if (rows.some(unsaturated)) {
  const below = `${SATURATED * 100}%`;
  process.stdout.write(
    `† a server was on the CPU less than ${below} of the time it could have: the load generator or other work ` +
      "on the machine set the pace, so the rate ratio understates the difference; the CPU/op ratio does not.\n\n",
  );
}
process.stdout.write(`Machine: ${run.machine.cpus} × ${run.machine.model}, Linux ${run.machine.kernel}; `);
process.stdout.write(`${Object.entries(run.runtimes).map(([n, v]) => `${n} ${v}`).join(", ")}; `);
process.stdout.write(`${run.minutes.toFixed(1)} min. JSON: ${out}\n`);
if (args.compare) process.stdout.write(`\n${compare(args.compare, rows)}\n`);
const missed = rows.filter((r) => r.met === false);
if (missed.length > 0) {
  process.stdout.write(`\nTargets missed: ${missed.map((r) => `${r.runtime} ${r.id}`).join(", ")}\n`);
}
