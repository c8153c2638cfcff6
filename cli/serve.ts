// `polybind serve`: an N-worker HTTP server. The primary plans and prepares the listeners of
// every address, starts one worker per part (a thread where each binds its own reuseport socket
// and the runtime has Web Workers, else a process), hands off or releases sockets, serves
// inherited sockets itself where the runtime cannot pass them on, and reports on shutdown.

import { type ChildProcess, fork, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  capabilities,
  cleanupUnixSocket,
  createListener,
  type Listener,
  type ListenerPlan,
  planListeners,
  type PreparedPlan,
  preparePlan,
  type ServerConfig,
} from "../mod.ts";
import { startLocalServer, type WorkerServer } from "./http.ts";
import type { ServeCommand } from "./args.ts";
import { runtimeCommand } from "./runtime_command.ts";

/** What the worker processes report on their stdout, one JSON object a line. */
export type WorkerReport =
  | { polybind: "ready"; worker: number }
  | { polybind: "served"; worker: number; requests: number };

/** A running worker, thread or process. */
interface WorkerHandle {
  /** The worker's process, where it is one: a shared socket can be handed to it. */
  readonly process?: ChildProcess;
  /** Resolves with the exit code once the worker has ended. */
  readonly exited: Promise<number | null>;
  /** Asks the worker to stop serving, report and end. */
  stop(): void;
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
function useThreads(plans: ListenerPlan[]): boolean {
  return webWorker() !== undefined && plans.length > 0 && plans.every((p) => p.strategy === "reuseport");
}

/** Starts worker `index` as a thread of this process. */
function startThread(plans: ListenerPlan[], index: number, onReport: (r: WorkerReport) => void): WorkerHandle {
  const Worker = webWorker()!;
  const url = new URL(import.meta.url.endsWith(".ts") ? "./thread_worker.ts" : "./thread_worker.js", import.meta.url);
  const thread = new Worker(url, { type: "module" });
  let ended!: (code: number | null) => void;
  const exited = new Promise<number | null>((resolve) => (ended = resolve));
  let stopping = false;
  thread.addEventListener("message", ({ data }) => {
    const r = data as WorkerReport | { polybind: "failed"; worker: number; message: string };
    if (r.polybind === "failed") {
      console.error(`polybind serve: worker ${r.worker}: ${r.message}`);
      thread.terminate();
      ended(1);
      return;
    }
    onReport(r);
    if (r.polybind === "served") {
      thread.terminate();
      ended(0);
    }
  });
  thread.addEventListener("error", () => {
    thread.terminate();
    ended(stopping ? 0 : 1);
  });
  thread.postMessage({ polybind: "start", plans, worker: index });
  return {
    exited,
    stop() {
      if (stopping) return;
      stopping = true;
      thread.postMessage({ polybind: "stop" });
    },
  };
}

/** Starts worker `index` as a process of this same runtime, with the plans in its environment. */
function startProcess(plans: ListenerPlan[], index: number, onReport: (r: WorkerReport) => void): WorkerHandle {
  const child = spawnWorker(plans, index);
  onReports(child, onReport);
  return {
    process: child,
    exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
    stop: () => void child.kill("SIGTERM"),
  };
}

function spawnWorker(plans: ListenerPlan[], index: number): ChildProcess {
  const cli = fileURLToPath(
    new URL(import.meta.url.endsWith(".ts") ? "./polybind.ts" : "./polybind.js", import.meta.url),
  );
  const env = { ...process.env, POLYBIND_PLANS: JSON.stringify(plans), POLYBIND_WORKER: String(index) };
  const stdio: ["ignore", "pipe", "inherit"] = ["ignore", "pipe", "inherit"];
  // Node.js workers get an IPC channel, over which a shared socket can be handed off.
  if (capabilities().processShare) return fork(cli, ["__worker"], { env, stdio: [...stdio, "ipc"] });
  const [command, args] = runtimeCommand(cli, ["__worker"]);
  return spawn(command, args, { env, stdio });
}

function onReports(child: ChildProcess, onReport: (r: WorkerReport) => void): void {
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      const r = JSON.parse(line) as WorkerReport;
      if (r.polybind === "ready" || r.polybind === "served") onReport(r);
    } catch {
      // Not a report: ignore.
    }
  });
}

function describe(plan: ListenerPlan): string {
  const a = plan.address;
  if (a.transport === "unix") return `unix:${a.path.startsWith("\0") ? "@" + a.path.slice(1) : a.path}`;
  if (a.transport === "inherited") return a.spec;
  const url = (ip: string) => `http://${ip.includes(":") ? `[${ip}]` : ip}:${a.port}`;
  return (plan.resolved ?? [a.hostname]).map(url).join(", ");
}

function describeListener(l: Listener): string {
  return l.addrs.map((a) => (a.transport === "unix" ? `unix:${a.path}` : `http://${a.hostname}:${a.port}`)).join(", ");
}

/** Binds what the primary holds: prepared plans for the workers, and inherited sockets it serves itself. */
async function prepareAll(configs: (ServerConfig | string)[], count: number, shared: boolean) {
  const prepared: PreparedPlan[] = [];
  const local: Listener[] = [];
  const plans = configs.map((c) => planListeners(c, count, { shared }));
  try {
    for (const plan of plans) {
      const inherited = plan.address.transport === "inherited" ? plan.address.spec : undefined;
      if (inherited !== undefined && plan.strategy === "single") local.push(await createListener(inherited));
      else prepared.push(await preparePlan(plan));
    }
  } catch (err) {
    await Promise.all([...prepared.map((p) => p.close()), ...local.map((l) => l.close())]);
    throw err;
  }
  return { plans, prepared, local };
}

/** Runs `polybind serve`; resolves with the exit code once the server has shut down. */
export async function runServe(options: ServeCommand): Promise<number> {
  const count = options.workers ?? availableParallelism();
  const configs: (ServerConfig | string)[] = options.listen.length > 0 ? options.listen : [
    options.uds !== undefined
      ? { uds: options.uds }
      : { host: options.host ?? "127.0.0.1", port: options.port ?? 8000 },
  ];
  const { plans, prepared, local } = await prepareAll(configs, count, options.shared);
  const remote = prepared.map((p) => p.plan);
  const workers = remote.length === 0 ? 0 : Math.max(...remote.map((p) => p.workers));
  const served = new Map<number, number>();
  const threads = useThreads(remote);
  const handles: WorkerHandle[] = [];
  let stopping = false;
  // Signals are handled from the start: a SIGINT while workers start stops them too, where the
  // default action would kill this process alone and leave its workers running.
  let wake!: () => void;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const h of handles) h.stop();
    wake();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let ready = 0;
  let onAllReady!: () => void;
  const allReady = new Promise<void>((resolve) => (onAllReady = resolve));
  if (workers === 0) onAllReady();
  const onReport = (r: WorkerReport) => {
    if (r.polybind === "ready" && ++ready === workers) onAllReady();
    if (r.polybind === "served") served.set(r.worker, r.requests);
  };
  const exited = Array.from({ length: workers }, (_, i) => {
    const handle = threads ? startThread(remote, i, onReport) : startProcess(remote, i, onReport);
    handles.push(handle);
    for (const p of prepared) {
      if (p.plan.strategy === "shared" && i < p.plan.workers && handle.process) p.handOff(handle.process);
    }
    return handle.exited;
  });
  const failed = exited.length > 0
    ? Promise.race(exited).then((code) => (stopping ? 0 : code ?? 1))
    : new Promise<number>(() => {});
  // 0: every worker is ready; -1: stopped by a signal meanwhile; else the failed start's code.
  const started = await Promise.race([
    allReady.then(() => 0),
    failed.then((code) => (stopping ? -1 : code || 1)),
    stopped.then(() => -1),
  ]);
  await Promise.all(prepared.map((p) => p.release()));
  const own: WorkerServer | undefined = local.length > 0 ? startLocalServer(local, workers) : undefined;

  if (started === 0) {
    const where = [...remote.map(describe), ...local.map(describeListener)].join(", ");
    const total = workers + (own ? 1 : 0);
    const kind = workers > 0 ? (threads ? " (threads)" : " (processes)") : "";
    console.log(`polybind serve: listening on ${where} with ${total} worker(s)${kind} on ${capabilities().runtime}`);
    for (const plan of plans) console.log(`strategy: ${plan.strategy} (${plan.reason})`);
  } else if (started > 0) console.error("polybind serve: a worker failed to start");

  if (started !== 0) stop();
  const crashed = await Promise.race([failed, stopped.then(() => 0)]);
  if (crashed !== 0 && !stopping) console.error("polybind serve: a worker stopped unexpectedly; stopping the others");
  stop();
  await Promise.all(exited);
  if (own) {
    await own.stop();
    served.set(workers, own.requests);
  }
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  await Promise.all(prepared.map((p) => p.close()));
  for (const c of configs) await cleanupUnixSocket(c);
  let total = 0;
  for (let i = 0; i < workers + (own ? 1 : 0); i++) {
    const n = served.get(i) ?? 0;
    total += n;
    console.log(`worker ${i} served ${n} requests`);
  }
  console.log(`total ${total} requests`);
  return started > 0 || crashed !== 0 ? 1 : 0;
}
