// The workers of `polybind serve`: threads (Web Workers, where each binds its own reuseport
// socket and the runtime has them) or processes of this same runtime, each reporting to the
// primary's event queue.

import { type ChildProcess, fork, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { capabilities, type ListenerPlan } from "../mod.ts";
import type { EventQueue, WorkerReport } from "./events.ts";
import { runtimeCommand } from "./runtime_command.ts";

/** A running worker, thread or process; it pushes its reports and its end to the queue. */
export interface WorkerHandle {
  /** The worker's process, where it is one: a shared socket can be handed to it. */
  readonly process?: ChildProcess;
  /** Asks the worker to stop serving, report and end. */
  stop(): void;
  /** Ends the worker at once, without its report. */
  kill(): void;
}

interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: "message" | "error", listener: (event: { data?: unknown }) => void): void;
}
type WebWorkerConstructor = new (url: URL, options: { type: "module" }) => WebWorker;

/** The runtime's Web Worker class (Deno, Bun), where it has one. */
function webWorker(): WebWorkerConstructor | undefined {
  const w = (globalThis as { Worker?: unknown }).Worker;
  return typeof w === "function" ? w as WebWorkerConstructor : undefined;
}

/**
 * Whether the workers run as threads: where every plan gives each worker its own reuseport
 * socket (nothing to hand over) and the runtime has Web Workers. Threads of one process switch
 * faster than processes; that is how `deno serve --parallel` runs its workers.
 */
export function useThreads(plans: ListenerPlan[]): boolean {
  return webWorker() !== undefined && plans.length > 0 && plans.every((p) => p.strategy === "reuseport");
}

/** Starts worker `index` as a thread of this process; it dies with this process. */
export function startThread(plans: ListenerPlan[], index: number, events: EventQueue): WorkerHandle {
  const Worker = webWorker()!;
  const url = new URL(import.meta.url.endsWith(".ts") ? "./thread_worker.ts" : "./thread_worker.js", import.meta.url);
  const thread = new Worker(url, { type: "module" });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    thread.terminate();
    events.push({ kind: "exit", worker: index });
  };
  thread.addEventListener("message", ({ data }) => {
    const r = data as WorkerReport | { polybind: "failed"; worker: number; message: string };
    if (r.polybind === "failed") console.error(`polybind serve: worker ${r.worker}: ${r.message}`);
    else events.push({ kind: "report", report: r });
    if (r.polybind !== "ready") end();
  });
  thread.addEventListener("error", end);
  thread.postMessage({ polybind: "start", plans, worker: index });
  return { stop: () => void (ended || thread.postMessage({ polybind: "stop" })), kill: end };
}

/**
 * Starts worker `index` as a process of this same runtime, with the plans in its environment.
 * Its stdin is a pipe that only this process holds: "stop" on it asks for a stop, and its end
 * tells the worker that this process is gone, however it went (even SIGKILL).
 */
export function startProcess(plans: ListenerPlan[], index: number, events: EventQueue): WorkerHandle {
  const cli = fileURLToPath(
    new URL(import.meta.url.endsWith(".ts") ? "./polybind.ts" : "./polybind.js", import.meta.url),
  );
  const env = { ...process.env, POLYBIND_PLANS: JSON.stringify(plans), POLYBIND_WORKER: String(index) };
  const stdio: ["pipe", "pipe", "inherit"] = ["pipe", "pipe", "inherit"];
  // Node.js workers get an IPC channel, over which a shared socket can be handed off.
  const [command, args] = runtimeCommand(cli, ["__worker"]);
  const child = capabilities().processShare
    ? fork(cli, ["__worker"], { env, stdio: [...stdio, "ipc"] })
    : spawn(command, args, { env, stdio });
  let ended = false;
  const end = () => {
    if (!ended) events.push({ kind: "exit", worker: index });
    ended = true;
  };
  // 'close' comes after the last report is read; an 'error' without a pid: it could not start.
  child.once("close", end);
  child.on("error", () => child.pid === undefined && end());
  child.stdin!.on("error", () => {});
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const r = parseReport(line);
    if (r) events.push({ kind: "report", report: r });
  });
  return {
    process: child,
    stop: () => void (ended || child.stdin!.write("stop\n")),
    kill: () => void (ended || child.kill("SIGKILL")),
  };
}

function parseReport(line: string): WorkerReport | undefined {
  try {
    const r = JSON.parse(line) as WorkerReport;
    return r.polybind === "ready" || r.polybind === "served" ? r : undefined;
  } catch {
    return undefined; // Not a report.
  }
}
