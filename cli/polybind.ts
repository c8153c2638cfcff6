#!/usr/bin/env node
// The polybind command: `probe` shows what this runtime supports, `serve` runs an N-worker
// HTTP server. Exit codes: 0 done, 1 the OS refused (e.g. port in use), 2 bad arguments.

import process from "node:process";
import { createInterface } from "node:readline";
import { checkPlan, ListenError } from "../mod.ts";
import { type Command, parseCommand, USAGE, UsageError } from "./args.ts";
import { startWorkerServer } from "./http.ts";
import { runProbe } from "./probe.ts";
import { runServe } from "./serve.ts";

/** How long an orphaned worker lets its requests in flight finish before it exits. */
const ORPHAN_STOP_MS = 500;

/**
 * Why a worker process stops: asked to (by its primary, which writes "stop" on the worker's
 * stdin, or by a signal such as a terminal's Ctrl-C), or orphaned: its primary is gone, however
 * it went (stdin ends; on Node.js the IPC channel closes too).
 */
function stopRequest(): Promise<"asked" | "orphaned"> {
  return new Promise((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => resolve("asked"));
    const lines = createInterface({ input: process.stdin });
    lines.on("line", (line) => line === "stop" && resolve("asked"));
    lines.on("close", () => resolve("orphaned"));
    if (process.connected) process.once("disconnect", () => resolve("orphaned"));
  });
}

/** Writes one report line to the primary; resolves once written (or failed: the primary is gone). */
function say(report: object): Promise<void> {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(report) + "\n", () => resolve()));
}

/**
 * A worker process: serves its part of the plans until asked to stop, then reports what it
 * served. An orphan leaves quietly: no report, as nobody reads it, and within a second.
 */
async function runWorker(): Promise<number> {
  // A write to a primary that has gone fails with EPIPE: nothing to report, nothing to print.
  process.stdout.on("error", () => {});
  const stop = stopRequest();
  const plans = (JSON.parse(process.env.POLYBIND_PLANS ?? "[]") as unknown[]).map(checkPlan);
  const index = Number(process.env.POLYBIND_WORKER);
  const starting = startWorkerServer(plans, index);
  if ((await Promise.race([starting, stop])) === "orphaned") {
    starting.catch(() => {});
    return 0;
  }
  const server = await starting;
  await say({ polybind: "ready", worker: index });
  if ((await stop) === "orphaned") {
    await Promise.race([server.stop(), new Promise((resolve) => setTimeout(resolve, ORPHAN_STOP_MS))]);
    return 0;
  }
  await server.stop();
  await say({ polybind: "served", worker: index, requests: server.requests });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`polybind: ${err.message}\n${USAGE}`);
    return 2;
  }
  try {
    if (command.name === "probe") {
      runProbe(command.json);
      return 0;
    }
    if (command.name === "worker") return await runWorker();
    return await runServe(command);
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) {
      console.error(`polybind: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof ListenError) {
      console.error(`polybind: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

const argv = process.argv.slice(2);
process.exitCode = await main(argv);
// A worker process reads its stdin (and has an IPC channel on Node.js), which would keep it alive.
if (argv[0] === "__worker") process.exit();
