// `polybind serve`: an N-worker HTTP server. The primary plans and prepares the listeners,
// starts one process per worker, hands off or releases sockets, and reports on shutdown.

import { type ChildProcess, fork, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { runtimeCommand } from "./runtime_command.ts";
import {
  capabilities,
  cleanupUnixSocket,
  type ListenerPlan,
  planListeners,
  preparePlan,
  type ServerConfig,
} from "../mod.ts";

/** What the worker processes report on their stdout, one JSON object a line. */
export type WorkerReport = { polybind: "ready"; worker: number } | {
  polybind: "served";
  worker: number;
  requests: number;
};

/** Starts a worker process of this same runtime, with the plan in its environment. */
function startWorker(plan: ListenerPlan, index: number): ChildProcess {
  const cli = fileURLToPath(
    new URL(import.meta.url.endsWith(".ts") ? "./polybind.ts" : "./polybind.js", import.meta.url),
  );
  const env = { ...process.env, POLYBIND_PLAN: JSON.stringify(plan), POLYBIND_WORKER: String(index) };
  const stdio: ["ignore", "pipe", "inherit"] = ["ignore", "pipe", "inherit"];
  // Node.js workers get an IPC channel, over which a shared socket can be handed off.
  if (capabilities().processShare) return fork(cli, ["__worker"], { env, stdio: [...stdio, "ipc"] });
  const [command, args] = runtimeCommand(cli, ["__worker"]);
  return spawn(command, args, { env, stdio });
}

function reports(child: ChildProcess, onReport: (r: WorkerReport) => void): void {
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      const r = JSON.parse(line) as WorkerReport;
      if (r.polybind === "ready" || r.polybind === "served") onReport(r);
    } catch {
      // Not a report: ignore.
    }
  });
}

/** Runs `polybind serve`; resolves with the exit code once the server has shut down. */
export async function runServe(options: ServerConfig & { workers?: number; shared: boolean }): Promise<number> {
  const count = options.workers ?? availableParallelism();
  const config: ServerConfig = options.uds !== undefined
    ? { uds: options.uds }
    : { host: options.host ?? "127.0.0.1", port: options.port ?? 8000 };
  const prepared = await preparePlan(planListeners(config, count, { shared: options.shared }));
  const { plan } = prepared;
  const served = new Map<number, number>();
  const children: ChildProcess[] = [];
  let stopping = false;
  let ready = 0;
  let onAllReady!: () => void;
  const allReady = new Promise<void>((resolve) => (onAllReady = resolve));
  const exited = Array.from({ length: plan.workers }, (_, i) => {
    const child = startWorker(plan, i);
    children.push(child);
    if (plan.strategy === "shared") prepared.handOff(child);
    reports(child, (r) => {
      if (r.polybind === "ready" && ++ready === plan.workers) onAllReady();
      if (r.polybind === "served") served.set(r.worker, r.requests);
    });
    return new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  });
  const failed = Promise.race(exited).then((code) => (stopping ? 0 : code ?? 1));
  const started = await Promise.race([allReady.then(() => 0), failed.then((code) => code || 1)]);
  await prepared.release();
  const a = plan.address;
  const where = a.transport === "unix"
    ? `unix:${a.path}`
    : `http://${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}`;
  if (started === 0) {
    console.log(`polybind serve: listening on ${where} with ${plan.workers} worker(s) on ${capabilities().runtime}`);
    console.log(`strategy: ${plan.strategy} (${plan.reason})`);
  } else console.error("polybind serve: a worker failed to start");

  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const c of children) c.kill("SIGTERM");
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  if (started !== 0) stop();
  const crashed = await Promise.race([failed, Promise.all(exited).then(() => 0)]);
  if (crashed !== 0 && !stopping) {
    console.error("polybind serve: a worker stopped unexpectedly; stopping the others");
    stop();
  }
  await Promise.all(exited);
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  await prepared.close();
  if (config.uds !== undefined) await cleanupUnixSocket(config);
  let total = 0;
  for (let i = 0; i < plan.workers; i++) {
    const n = served.get(i) ?? 0;
    total += n;
    console.log(`worker ${i} served ${n} requests`);
  }
  console.log(`total ${total} requests`);
  return started !== 0 || (crashed !== 0 && crashed !== null) ? 1 : 0;
}
