#!/usr/bin/env node
// The polybind command: `probe` shows what this runtime supports, `serve` runs an N-worker
// HTTP server. Exit codes: 0 done, 1 the OS refused (e.g. port in use), 2 bad arguments.

import process from "node:process";
import { checkPlan, ListenError } from "../mod.ts";
import { type Command, parseCommand, USAGE, UsageError } from "./args.ts";
import { startWorkerServer } from "./http.ts";
import { runProbe } from "./probe.ts";
import { runServe } from "./serve.ts";

async function runWorker(): Promise<number> {
  const plans = (JSON.parse(process.env.POLYBIND_PLANS ?? "[]") as unknown[]).map(checkPlan);
  const index = Number(process.env.POLYBIND_WORKER);
  const server = await startWorkerServer(plans, index);
  const say = (report: object) => process.stdout.write(JSON.stringify(report) + "\n");
  say({ polybind: "ready", worker: index });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
    // A worker process with an IPC channel stops when its primary is gone, however it went.
    if (process.connected) process.once("disconnect", resolve);
  });
  await server.stop();
  say({ polybind: "served", worker: index, requests: server.requests });
  process.disconnect?.();
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

process.exitCode = await main(process.argv.slice(2));
