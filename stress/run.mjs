// `npm run test:stress`: runs the stress tests (stress/*.test.ts) on Deno (with --unstable-net),
// Bun, Node.js 20 and Node.js 24, one runtime after the other, each bounded in time, and ends
// with the figures measured and one line "N passed, M failed". Exits non-zero on any failure.
// Usage: node stress/run.mjs [deno] [deno-stable] [bun] [node20] [node24]   (default: all five;
// deno-stable: Deno without --unstable-net, where only the reload test differs)
// Env: STRESS_TIMEOUT_S, the limit per runtime in seconds (default 240).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const limit = Number(process.env.STRESS_TIMEOUT_S ?? 240) * 1000;
const bin = (
  name,
) => (existsSync(join(root, "node_modules", ".bin", name)) ? join(root, "node_modules", ".bin", name) : name);

/** A Node.js of `major`: this one if it is, else one from npm through npx. */
function node(major) {
  return Number(process.versions.node.split(".")[0]) === major ? [process.execPath] : ["npx", "-y", `node@${major}`];
}

function nodeRun(major) {
  const files = readdirSync(join(root, ".build", "stress")).filter((f) => f.endsWith(".test.js")).sort();
  const args = ["--expose-gc", "--test", "--test-concurrency=1", "--test-reporter=tap"];
  return [...node(major), ...args, ...files.map((f) => join(".build", "stress", f))];
}

const RUNTIMES = {
  deno: () => [bin("deno"), "test", "-A", "--unstable-net", "--v8-flags=--expose-gc", "stress/"],
  "deno-stable": () => [bin("deno"), "test", "-A", "stress/reload.test.ts"],
  bun: () => [bin("bun"), "test", "--timeout", "300000", "./stress/"],
  node20: () => nodeRun(20),
  node24: () => nodeRun(24),
};

/** Passed and failed test counts from each runner's summary, or undefined if there is none. */
function counts(name, output) {
  const number = (re) => Number(re.exec(output)?.[1] ?? NaN);
  if (name.startsWith("deno")) {
    const m = /(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(output);
    return m ? { passed: Number(m[1]), failed: Number(m[2]) } : undefined;
  }
  if (name === "bun") {
    const passed = number(/^\s*(\d+) pass$/m);
    return Number.isNaN(passed) ? undefined : { passed, failed: number(/^\s*(\d+) fail$/m) || 0 };
  }
  const passed = number(/^# pass (\d+)$/m);
  if (Number.isNaN(passed)) return undefined;
  return { passed, failed: (number(/^# fail (\d+)$/m) || 0) + (number(/^# cancelled (\d+)$/m) || 0) };
}

/** Runs `argv` in its own process group, echoing its output; kills the group after `limit`. */
function run(name, argv) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(`\n=== ${name}: ${argv.join(" ")}`);
    const child = spawn(argv[0], argv.slice(1), {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", DENO_NO_UPDATE_CHECK: "1" },
    });
    let output = "";
    const echo = (chunk) => {
      output += chunk;
      process.stdout.write(String(chunk).replace(/^(?=.)/gm, `[${name}] `));
    };
    child.stdout.on("data", echo);
    child.stderr.on("data", echo);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }, limit);
    child.on("error", (err) => (output += `\n${err.message}`));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ name, code, output, timedOut, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(RUNTIMES);
const unknown = chosen.filter((name) => !(name in RUNTIMES));
if (unknown.length > 0) {
  console.error(`Unknown runtime ${unknown.join(", ")}: choose from ${Object.keys(RUNTIMES).join(", ")}`);
  process.exit(2);
}

let built = true;
if (chosen.some((name) => name.startsWith("node"))) {
  const tsc = spawnSync(bin("tsc"), ["-p", "tsconfig.test.json"], { cwd: root, stdio: "inherit" });
  built = tsc.status === 0;
}

let passed = 0;
let failed = 0;
const summary = [];
const figures = [];
for (const name of chosen) {
  if (name.startsWith("node") && !built) {
    failed++;
    summary.push(`${name}: not run, tsc -p tsconfig.test.json failed`);
    continue;
  }
  const r = await run(name, RUNTIMES[name]());
  const c = counts(name, r.output);
  const p = c?.passed ?? 0;
  // A runner that crashed, timed out or failed without saying which test counts as one failure.
  const f = (c?.failed ?? 0) + ((r.timedOut || r.code !== 0) && !c?.failed ? 1 : 0);
  passed += p;
  failed += f;
  const why = r.timedOut ? `, killed after ${limit / 1000} s` : r.code !== 0 && !c?.failed ? `, exit ${r.code}` : "";
  summary.push(`${name}: ${p} passed, ${f} failed in ${r.seconds.toFixed(0)} s${why}`);
  figures.push(...r.output.split("\n").filter((line) => line.includes("[figure]")).map((l) => l.replace(/^# /, "")));
}

console.log("\n=== figures");
for (const line of figures) console.log(line.trim());
console.log("\n=== summary");
for (const line of summary) console.log(line);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
