// Multi-worker HTTP: `polybind serve --workers 2` against each runtime's own best option on the
// same machine in the same run (Node.js cluster with round-robin, `deno serve --parallel`,
// Bun.serve with reusePort in 2 processes), loaded alternately A B A B ... with wrk. By default
// every server runs on CPU 0 and wrk on CPU 1, as in bench/run.mjs: on a 2-core machine an
// unpinned load generator competes with the workers and the run measures that contention.
// Usage: node bench/workers.mjs [--rounds N] [--seconds S] [--no-pin]   (npm run bench:workers)

import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { ensureWrk, wrk } from "./lib/load.mjs";
import { fmt, machine, median, table, writeJson } from "./lib/report.mjs";
import { ROOT } from "./lib/runtimes.mjs";

const { values } = parseArgs({
  options: { rounds: { type: "string" }, seconds: { type: "string" }, "no-pin": { type: "boolean" } },
});
const PIN = !values["no-pin"];
/** CPU of the load generator; the servers get CPU 0. */
const LOAD_CPU = PIN ? 1 : undefined;
const ROUNDS = Number(values.rounds ?? 6);
const SECONDS = Number(values.seconds ?? 3);
const bin = (name) => join(ROOT, "node_modules", ".bin", name);

/** Starts a server and resolves with its port and a stop function, once it prints its URL. */
function start(cmd, args, env = {}) {
  const [file, argv] = PIN ? ["taskset", ["-c", "0", cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      child.once("close", () => resolve(clearTimeout(timer)));
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (stop(), reject(new Error(`${cmd} did not start:\n${out}`))), 60_000);
    const onData = (d) => {
      out += d;
      const m = /http:\/\/[\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), stop });
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

/** Per runtime: how to run `polybind serve --workers 2` and the runtime's own option. */
function contenders() {
  const cli = ["serve", "--port", "0", "--workers", "2"];
  const nodeCli = join(ROOT, "dist", "cli", "polybind.js");
  const n24 = node24();
  return [
    {
      runtime: `node ${process.versions.node}`,
      polybind: [process.execPath, [nodeCli, ...cli]],
      native: ["node:cluster (round-robin)", process.execPath, [join(ROOT, "bench/workers/node_cluster.mjs")]],
    },
    {
      runtime: `node ${execFileSync(n24, ["--version"], { encoding: "utf8" }).trim().slice(1)}`,
      polybind: [n24, [nodeCli, ...cli]],
      native: ["node:cluster (round-robin)", n24, [join(ROOT, "bench/workers/node_cluster.mjs")]],
    },
    {
      runtime: `bun ${execFileSync(bin("bun"), ["--version"], { encoding: "utf8" }).trim()}`,
      polybind: [bin("bun"), [join(ROOT, "cli/polybind.ts"), ...cli]],
      native: ["Bun.serve reusePort x2", bin("bun"), [join(ROOT, "bench/workers/bun_reuseport.mjs")]],
    },
    {
      runtime: `deno ${execFileSync(bin("deno"), ["--version"], { encoding: "utf8" }).split(" ")[1]}`,
      polybind: [bin("deno"), ["run", "-A", "--unstable-net", join(ROOT, "cli/polybind.ts"), ...cli]],
      native: [
        "deno serve --parallel",
        bin("deno"),
        [
          "serve",
          "--parallel",
          "-A",
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          join(ROOT, "bench/workers/deno_parallel.ts"),
        ],
        { DENO_JOBS: "2" },
      ],
    },
  ];
}

async function main() {
  ensureWrk();
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  const rows = [];
  for (const c of contenders()) {
    const [nativeName, cmd, args, env] = c.native;
    const a = await start(...c.polybind);
    const b = await start(cmd, args, env);
    const rates = { polybind: [], native: [] };
    const errors = [];
    const ratios = [];
    try {
      // A warm-up second each (JIT, connection set-up), then rounds in alternating order; the
      // ratio is the median of per-round ratios, as in bench/run.mjs, which cancels drift.
      for (const server of [a, b]) await wrk(server.port, { seconds: 1, connections: 32, cpu: LOAD_CPU });
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? [["polybind", a], ["native", b]] : [["native", b], ["polybind", a]];
        for (const [key, server] of order) {
          const r = await wrk(server.port, { seconds: SECONDS, connections: 32, cpu: LOAD_CPU });
          rates[key].push(r.value);
          errors.push(...r.errors.map((e) => `${key}: ${e}`));
        }
        ratios.push(rates.polybind[round] / rates.native[round]);
      }
    } finally {
      await a.stop();
      await b.stop();
    }
    const p = median(rates.polybind);
    const n = median(rates.native);
    rows.push({
      runtime: c.runtime,
      measure: `HTTP req/s, 2 workers vs ${nativeName}`,
      poly: p,
      raw: n,
      ratio: median(ratios),
      target: ">= 1.0",
      met: median(ratios) >= 1,
      errors,
    });
    process.stderr.write(`${c.runtime}: polybind ${fmt(p)} rps, ${nativeName} ${fmt(n)} rps\n`);
  }
  console.log(table(rows));
  writeJson(join(ROOT, "bench", "results", "workers.json"), {
    machine: machine(),
    rounds: ROUNDS,
    pinned: PIN,
    seconds: SECONDS,
    rows,
  });
}

await main();
