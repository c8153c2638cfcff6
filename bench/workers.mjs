// Multi-worker HTTP (issue 13): `polybind serve bench/workers/app.js --workers 2` against each
// runtime's own best option serving the same fetch app, on the same machine in the same run:
// `deno serve --parallel` (DENO_JOBS=2), Bun.serve with reusePort in 2 processes, and node:cluster
// (round-robin, and SCHED_NONE) with node:http and srvx's toNodeHandler. On Node.js the same
// cluster answering from node:http without a fetch adapter shows what the adapter costs.
// All servers of a runtime run at once; each round loads every one of them in turn with wrk
// (the order rotates from round to round), kept-alive, then with "Connection: close". A ratio is
// the median of the per-round ratios, which cancels the machine's drift. By default every server
// runs on CPU 0 and wrk on CPU 1: on a 2-core machine an unpinned load generator competes with
// the workers and the run measures that contention.
// With --concurrent both servers of a pair are loaded at the same time instead (each with its own
// wrk): they share CPU 0, and whatever slows the host down slows both alike. Each server then
// runs in a cgroup of equal weight (bench/lib/cgroup.mjs, as root), so the core is split between
// the two servers, not between their threads and processes.
// Two processes of the same server can differ by a few per cent for their whole life (the same
// server against itself: pairs from 0.974 to 1.008), so with --pairs N a runtime's servers are
// started N times over, in alternating order, ROUNDS rounds each, all rounds judged together.
// Usage: node bench/workers.mjs [--rounds N] [--seconds S] [--no-pin] [--no-close] [--concurrent]
//          [--pairs N] [--runtimes node20,node24,bun,deno]          (npm run bench:workers)
// Writes bench/results/workers.json (workers-concurrent.json with --concurrent).

import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { ensureWrk, wrk } from "./lib/load.mjs";
import { benchGroups, cpuSeconds, pairsOption, placed } from "./lib/proc.mjs";
import { fmt, machine, median, writeJson } from "./lib/report.mjs";
import { ROOT } from "./lib/runtimes.mjs";

const { values } = parseArgs({
  options: {
    rounds: { type: "string" },
    seconds: { type: "string" },
    runtimes: { type: "string" },
    "no-pin": { type: "boolean" },
    "no-close": { type: "boolean" },
    concurrent: { type: "boolean" },
    pairs: { type: "string" },
  },
});
const PIN = !values["no-pin"];
/** CPU of the load generator; the servers get CPU 0. */
const LOAD_CPU = PIN ? 1 : undefined;
const ROUNDS = Number(values.rounds ?? 6);
/** How many times each runtime's servers are started, ROUNDS rounds each. */
const PAIRS = pairsOption(values.pairs);
const SECONDS = Number(values.seconds ?? 3);
/** Load both servers of a pair at the same time instead of in turn. */
const CONCURRENT = values.concurrent === true;
const RUNTIMES = (values.runtimes ?? "node20,node24,bun,deno").split(",");
const LOADS = [
  { id: "keep-alive", close: false },
  ...(values["no-close"] ? [] : [{ id: "new conns", close: true }]),
];
/** Share of a core other processes may take during a round before it is run again, and how often per load. */
const MAX_FOREIGN = 0.05;
const MAX_RETRIES = 4;
const APP = join(ROOT, "bench", "workers", "app.js");
const bin = (name) => join(ROOT, "node_modules", ".bin", name);

/** User plus system CPU seconds of `pid`, its threads and all its descendants (Linux). */
function treeCpu(pid) {
  let total = cpuSeconds(pid);
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      for (const child of children ? children.split(" ") : []) total += treeCpu(Number(child));
    }
  } catch {
    // The process ended meanwhile.
  }
  return total;
}

/** The servers still running, ended when this process exits however it ends. */
const running = new Set();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts server `name` and resolves with its port, its pid and a stop function, once it prints
 * its URL.
 */
function start(name, cmd, args, env = {}) {
  // Loaded at once, servers share CPU 0 by server, not by thread: a cgroup of equal weight each
  // (a new one for each start).
  const [file, argv] = placed(cmd, args, { cpu: PIN ? 0 : undefined, group: CONCURRENT ? name : undefined });
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      child.once("close", () => resolve(clearTimeout(timer)));
      child.kill("SIGTERM");
    });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (stop(), reject(new Error(`${cmd} did not start:\n${out}`))), 60_000);
    const onData = (d) => {
      out += d;
      const m = /http:\/\/[\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.removeListener("data", onData);
        child.stderr.removeListener("data", onData);
        child.stdout.resume();
        child.stderr.on("data", (d) => process.stderr.write(d));
        resolve({ port: Number(m[1]), pid: child.pid, stop });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${cmd} exited with ${code}:\n${out}`)));
  });
}

function node24() {
  return execFileSync("npx", ["-y", "node@24", "-p", "process.execPath"], { encoding: "utf8" }).trim();
}

const CLI = ["serve", APP, "--port", "0", "--workers", "2"];
// Deno and Bun: the runtime's own server, each generation beside the last (what tcp_migrate_req=1
// picks), and on lent sockets (what tcp_migrate_req=0 picks: zero-downtime reloads; a SO_REUSEPORT
// socket per worker slot, which the primary keeps), where each worker's Deno.serve or Bun.serve
// adopts its socket (adapters/_adopt.ts; node:http where it cannot).
const BESIDE = [...CLI, "--handover", "beside"];
const LEND = [...CLI, "--handover", "lend"];

/** Node.js (20 or 24 by `exe`): polybind, cluster with srvx (round-robin, SCHED_NONE), cluster with plain node:http. */
function nodeGroup(exe, version) {
  const cluster = join(ROOT, "bench", "workers", "node_cluster.mjs");
  return {
    runtime: `node ${version}`,
    servers: {
      polybind: ["polybind serve (2 processes; lent sockets: one each on Node.js 22.12+, one shared on 20)", exe, [
        join(ROOT, "dist", "cli", "polybind.js"),
        ...CLI,
      ]],
      clusterRr: ["node:cluster round-robin + srvx", exe, [cluster, "rr", "srvx"]],
      clusterNone: ["node:cluster SCHED_NONE + srvx", exe, [cluster, "none", "srvx"]],
      plainRr: ["node:cluster round-robin + plain node:http", exe, [cluster, "rr", "plain"]],
    },
    compare: [
      ["polybind", "clusterRr", "polybind / node:cluster RR + srvx", ">= 1.0"],
      ["polybind", "clusterNone", "polybind / node:cluster SCHED_NONE + srvx", undefined],
      ["clusterRr", "plainRr", "srvx adapter cost: cluster RR srvx / plain node:http", undefined],
    ],
  };
}

function contenders() {
  const deno = execFileSync(bin("deno"), ["--version"], { encoding: "utf8" }).split(" ")[1];
  const make = {
    node20: () => nodeGroup(process.execPath, process.versions.node),
    node24: () => {
      const exe = node24();
      return nodeGroup(exe, execFileSync(exe, ["--version"], { encoding: "utf8" }).trim().slice(1));
    },
    bun: () => ({
      runtime: `bun ${execFileSync(bin("bun"), ["--version"], { encoding: "utf8" }).trim()}`,
      servers: {
        polybind: ["polybind serve --handover beside (2 threads, reuseport)", bin("bun"), [
          join(ROOT, "cli/polybind.ts"),
          ...BESIDE,
        ]],
        polybindLend: [
          "polybind serve --handover lend (2 threads, a lent SO_REUSEPORT socket each, adopted)",
          bin("bun"),
          [
            join(ROOT, "cli/polybind.ts"),
            ...LEND,
          ],
        ],
        native: [
          "Bun.serve reusePort x2 (processes)",
          bin("bun"),
          [join(ROOT, "bench/workers/bun_reuseport.mjs")],
        ],
      },
      compare: [
        ["polybind", "native", "polybind beside / Bun.serve reusePort x2", ">= 1.0"],
        ["polybindLend", "native", "polybind lend / Bun.serve reusePort x2", ">= 1.0"],
      ],
    }),
    deno: () => ({
      runtime: `deno ${deno}`,
      servers: {
        polybind: [
          "polybind serve --unstable-net --handover beside (2 threads, reuseport)",
          bin("deno"),
          ["run", "-A", "--unstable-net", join(ROOT, "cli/polybind.ts"), ...BESIDE],
        ],
        polybindProc: [
          "polybind serve, no --unstable-net, --handover beside (2 processes, reuseport)",
          bin("deno"),
          ["run", "-A", join(ROOT, "cli/polybind.ts"), ...BESIDE],
        ],
        polybindLend: [
          "polybind serve --unstable-net --handover lend (2 processes, a lent SO_REUSEPORT socket each, adopted)",
          bin("deno"),
          ["run", "-A", "--unstable-net", join(ROOT, "cli/polybind.ts"), ...LEND],
        ],
        polybindLendProc: [
          "polybind serve, no --unstable-net, --handover lend (2 processes, a lent SO_REUSEPORT socket each, adopted)",
          bin("deno"),
          ["run", "-A", join(ROOT, "cli/polybind.ts"), ...LEND],
        ],
        native: [
          "deno serve --parallel (DENO_JOBS=2)",
          bin("deno"),
          ["serve", "--parallel", "-A", "--host", "127.0.0.1", "--port", "0", APP],
          { DENO_JOBS: "2" },
        ],
      },
      compare: [
        ["polybind", "native", "polybind --unstable-net / deno serve --parallel", ">= 1.0"],
        ["polybindProc", "native", "polybind (processes) / deno serve --parallel", ">= 1.0"],
        ["polybindLend", "native", "polybind lend --unstable-net / deno serve --parallel", ">= 1.0"],
        ["polybindLendProc", "native", "polybind lend (no --unstable-net) / deno serve --parallel", ">= 1.0"],
      ],
    }),
  };
  return RUNTIMES.map((name) => {
    if (!Object.hasOwn(make, name)) {
      throw new RangeError(
        `Cannot run as '--runtimes' takes ${Object.keys(make).join(", ")}: current value is ${name}`,
      );
    }
    return make[name]();
  });
}

/** CPU `n`'s user, nice and system seconds so far (Linux). */
function coreSeconds(n) {
  const line = readFileSync("/proc/stat", "utf8").split("\n").find((l) => l.startsWith(`cpu${n} `));
  const [user, nice, system] = line.split(/\s+/).slice(1, 4).map(Number);
  return (user + nice + system) / 100;
}

/** CPU seconds of this process's ended children (wrk's, once it has been waited for). */
function childrenSeconds() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/**
 * wrk loads of `list` (servers), all at once, each with its server's CPU seconds per request
 * and share of a core over it, and, when pinned, the largest share of CPU 0 (the servers') or
 * CPU 1 (wrk's) that other processes took meanwhile: the machine may be shared.
 */
async function loadAll(list, seconds, close) {
  const cpu = list.map((server) => treeCpu(server.pid));
  const cores = [coreSeconds(0), coreSeconds(1)];
  const children = childrenSeconds();
  const t = performance.now();
  const results = await Promise.all(
    list.map((server) => wrk(server.port, { seconds, connections: 32, close, cpu: LOAD_CPU })),
  );
  const wall = (performance.now() - t) / 1000;
  const used = list.map((server, i) => treeCpu(server.pid) - cpu[i]);
  const total = used.reduce((a, b) => a + b, 0);
  const foreign = PIN
    ? Math.max(coreSeconds(0) - cores[0] - total, coreSeconds(1) - cores[1] - (childrenSeconds() - children), 0) /
      wall
    : 0;
  return results.map((r, i) => ({ ...r, busy: used[i] / wall, cpuUs: (used[i] * 1e6) / r.ops, foreign }));
}

/**
 * One round: every pair's two loads. In turn (the order rotates with `round`), each server loaded
 * once and its result shared by the pairs it is in; or, CONCURRENT, the two servers of each pair
 * loaded at the same time (each then gets a share of CPU 0, and the host's drift hits both alike).
 */
async function runRound(group, servers, round, close) {
  if (CONCURRENT) {
    const pairs = [];
    for (const [a, b] of group.compare) {
      // Which of the two wrk processes starts first alternates too.
      const both = round % 2 === 0 ? [servers[a], servers[b]] : [servers[b], servers[a]];
      const results = await loadAll(both, SECONDS, close);
      pairs.push(round % 2 === 0 ? results : results.reverse());
    }
    return pairs;
  }
  const keys = Object.keys(servers);
  const results = {};
  for (const key of keys.map((_, i) => keys[(i + round) % keys.length])) {
    [results[key]] = await loadAll([servers[key]], SECONDS, close);
  }
  return group.compare.map(([a, b]) => [results[a], results[b]]);
}

/**
 * One start of a runtime's servers (`pair`: which start, alternating the order they start in)
 * through every load: into `results[load][comparison]`, each round's `[a, b]`, and how many
 * rounds were run again and the most CPU other processes took.
 */
async function runPair(group, pair, results) {
  const servers = {};
  try {
    const entries = Object.entries(group.servers);
    for (const [key, [, cmd, args, env]] of pair % 2 === 0 ? entries : entries.reverse()) {
      servers[key] = await start(PAIRS > 1 ? `${key}-${pair}` : key, cmd, args, env);
    }
    for (const l of LOADS) {
      const into = results[l.id];
      // A warm-up second each (JIT, connection set-up).
      for (const server of Object.values(servers)) await loadAll([server], 1, l.close);
      for (let round = 0, retries = 0; round < ROUNDS; round++) {
        const compared = await runRound(group, servers, round, l.close);
        // Another process took a core during the round: the round again, a few times.
        const foreign = Math.max(...compared.flat().map((r) => r.foreign));
        if (foreign > MAX_FOREIGN && retries < MAX_RETRIES) {
          retries++;
          into.retries++;
          process.stderr.write(
            `${group.runtime} ${l.id}: round ${round} again (${(100 * foreign).toFixed(0)}% of a core elsewhere)\n`,
          );
          round--;
          continue;
        }
        compared.forEach((ab, i) => into.rounds[i].push({ pair, ab }));
        into.foreignMax = Math.max(into.foreignMax, foreign);
      }
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }
}

/** Runs one runtime's servers through every load, PAIRS times; returns its rows. */
async function runGroup(group) {
  const results = Object.fromEntries(
    LOADS.map((l) => [l.id, { rounds: group.compare.map(() => []), retries: 0, foreignMax: 0 }]),
  );
  for (let pair = 0; pair < PAIRS; pair++) await runPair(group, pair, results);
  const rows = [];
  for (const l of LOADS) {
    const { rounds, retries, foreignMax } = results[l.id];
    group.compare.forEach(([a, b, measure, target], i) => {
      const ra = rounds[i].map((x) => x.ab[0]);
      const rb = rounds[i].map((x) => x.ab[1]);
      const value = (list) => list.map((r) => r.value);
      const ratios = ra.map((r, j) => r.value / rb[j].value);
      const ratio = median(ratios);
      // Each start's own median: how far two starts of the same servers differ.
      const pairRatios = Array.from(
        { length: PAIRS },
        (_, p) => median(ratios.filter((_, j) => rounds[i][j].pair === p)),
      );
      const errors = [
        ...ra.flatMap((r) => r.errors.map((e) => `${a}: ${e}`)),
        ...rb.flatMap((r) => r.errors.map((e) => `${b}: ${e}`)),
      ];
      rows.push({
        runtime: group.runtime,
        load: l.id,
        measure,
        a: group.servers[a][0],
        b: group.servers[b][0],
        rateA: median(value(ra)),
        rateB: median(value(rb)),
        ratio,
        // Server CPU time per request, B over A (>= 1: A costs less), per round.
        cpuRatio: median(ra.map((r, j) => rb[j].cpuUs / r.cpuUs)),
        busyA: median(ra.map((r) => r.busy)),
        busyB: median(rb.map((r) => r.busy)),
        target,
        met: target === undefined ? undefined : ratio >= 1,
        retries,
        foreignMax,
        details: {
          a: value(ra),
          b: value(rb),
          cpuUsA: ra.map((r) => r.cpuUs),
          cpuUsB: rb.map((r) => r.cpuUs),
          pairRatios,
          errors,
        },
      });
      process.stderr.write(
        `${group.runtime} ${l.id}: ${measure}: ${fmt(median(value(ra)))} / ${fmt(median(value(rb)))} = ${
          ratio.toFixed(3)
        }${PAIRS > 1 ? ` (starts: ${pairRatios.map((r) => r.toFixed(3)).join(", ")})` : ""}\n`,
      );
    });
  }
  return rows;
}

/** The result table, as Markdown. */
function table(rows) {
  const head = [
    "runtime",
    "load",
    "measure",
    "A req/s",
    "B req/s",
    "ratio A/B",
    "CPU/req B/A",
    "busy A/B",
    "elsewhere",
    "target",
    "met",
  ];
  const lines = rows.map((r) => [
    r.runtime,
    r.load,
    r.measure,
    fmt(r.rateA),
    fmt(r.rateB),
    r.ratio.toFixed(3),
    r.cpuRatio.toFixed(3),
    `${r.busyA.toFixed(2)}/${r.busyB.toFixed(2)}`,
    `${(100 * r.foreignMax).toFixed(0)}%${r.retries > 0 ? ` (${r.retries} again)` : ""}`,
    r.target ?? "-",
    r.met === undefined ? "-" : r.met ? "yes" : "**no**",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...lines.map(line)].join("\n");
}

/** How servers loaded at once share CPU 0. */
function shares() {
  const { wrap, why } = benchGroups();
  return wrap ? "a cgroup of equal weight each" : `by thread: ${why}`;
}

async function main() {
  ensureWrk();
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  const started = Date.now();
  const rows = [];
  for (const group of contenders()) rows.push(...await runGroup(group));
  console.log(table(rows));
  const errors = rows.flatMap((r) => r.details.errors);
  if (errors.length > 0) console.log(`\nerrors:\n${[...new Set(errors)].join("\n")}`);
  console.log(
    `\n${PAIRS > 1 ? `${PAIRS} starts of each server, ` : ""}${ROUNDS} rounds of ${SECONDS} s${
      CONCURRENT ? `, pairs loaded at once (${shares()})` : ""
    }, ${PIN ? "servers on CPU 0, wrk on CPU 1" : "unpinned"}, ${((Date.now() - started) / 60000).toFixed(1)} min`,
  );
  writeJson(join(ROOT, "bench", "results", CONCURRENT ? "workers-concurrent.json" : "workers.json"), {
    date: new Date().toISOString(),
    commit: execFileSync("git", ["describe", "--always", "--dirty"], { cwd: ROOT, encoding: "utf8" }).trim(),
    machine: machine(),
    rounds: ROUNDS,
    pairs: PAIRS,
    pinned: PIN,
    concurrent: CONCURRENT,
    shares: CONCURRENT ? shares() : undefined,
    seconds: SECONDS,
    rows,
  });
}

await main();
