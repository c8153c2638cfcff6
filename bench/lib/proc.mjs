// Child processes for the benchmark: servers that announce themselves with a "READY {...}"
// line, and one-shot programs whose stdout we read. Every child has a deadline, and whatever
// is still running when bench/run.mjs exits is killed.

import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { cpuGroups } from "./cgroup.mjs";

const running = new Set();

function killAll() {
  for (const child of running) child.kill("SIGKILL");
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * How many times a bench starts its servers, from its `--pairs` option: a whole number from 1
 * (1 where the option is not given).
 */
export function pairsOption(text) {
  const pairs = Number(text ?? 1);
  if (!Number.isInteger(pairs) || pairs < 1) throw new RangeError(`--pairs must be a whole number from 1: ${text}`);
  return pairs;
}

let groups;

/**
 * This machine's CPU groups (cgroup.mjs), made once: `{ wrap }`, or `{ why }` there are none.
 * The first call decides `cap` (each group's limit, a fraction of a CPU; none: no limit).
 */
export function benchGroups(cap) {
  return groups ??= cpuGroups({ cap });
}

/**
 * The command that runs `cmd args` on CPU `cpu` when one is given (taskset), else as is; with
 * `group`, in the CPU group of that name (equal weight with the others), where groups can be made.
 *
 * @returns `[file, argv]` for spawn().
 */
export function placed(cmd, args, { cpu, group } = {}) {
  const [pinned, pinnedArgs] = cpu === undefined ? [cmd, args] : ["taskset", ["-c", String(cpu), cmd, ...args]];
  const { wrap } = group === undefined ? {} : benchGroups();
  return wrap ? wrap(group, pinned, pinnedArgs) : [pinned, pinnedArgs];
}

/** `cmd args` started as placed() places it, its standard streams piped, ended with this process. */
function spawnOn(cpu, cmd, args, group) {
  const [file, argv] = placed(cmd, args, { cpu, group });
  const child = spawn(file, argv, { stdio: ["pipe", "pipe", "pipe"] });
  running.add(child);
  child.on("exit", () => running.delete(child));
  child.stdin.on("error", () => {});
  return child;
}

let ticksPerSecond;

/** User plus system CPU time of process `pid` and all its threads, from /proc (Linux). */
export function cpuSeconds(pid) {
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" })) || 100;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return NaN;
  }
}

/** The last few kilobytes a stream wrote, for error messages. */
function tail(stream) {
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => (text = (text + chunk).slice(-4000)));
  return () => text.trim();
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

/**
 * Starts a server and waits for its READY line.
 *
 * @param options.group A CPU group to run in (servers loaded at once: one each).
 * @returns `{ info, stop, cpuSeconds }`: what the server announced, a function that ends it,
 *   and one that reads the CPU time it has used so far.
 */
export function startServer(cmd, args, { cpu, group, timeoutMs = 30_000 } = {}) {
  const child = spawnOn(cpu, cmd, args, group);
  const stderr = tail(child.stderr);
  const stop = async () => {
    child.stdin.end();
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited(child);
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let out = "";
    const fail = (why) => {
      clearTimeout(timer);
      void stop();
      reject(new Error(`${why}: ${cmd} ${args.join(" ")}\n${stderr()}`));
    };
    const timer = setTimeout(() => fail(`No READY line within ${timeoutMs} ms`), timeoutMs);
    child.stdout.setEncoding("utf8");
    const onExit = (code, signal) => fail(`Exited (${code ?? signal}) before READY`);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const at = out.indexOf("READY ");
      const end = at < 0 ? -1 : out.indexOf("\n", at);
      if (end < 0) return;
      clearTimeout(timer);
      child.off("exit", onExit);
      child.stdout.removeAllListeners("data");
      child.stdout.resume();
      resolve({ info: JSON.parse(out.slice(at + 6, end)), stop, cpuSeconds: () => cpuSeconds(child.pid) });
    });
    child.once("exit", onExit);
  });
}

/**
 * Runs a program to its end and resolves with its stdout; kills it after `timeoutMs`.
 */
export function runToEnd(cmd, args, { cpu, timeoutMs = 60_000 } = {}) {
  const child = spawnOn(cpu, cmd, args);
  child.stdin.end();
  const stderr = tail(child.stderr);
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => (out += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} ended with ${code ?? signal}\n${out}\n${stderr()}`));
    });
  });
}
