// Starting a supervisor's workers: threads (Web Workers, where every worker binds its own
// reuseport socket and this process can) or processes of this same runtime. Each pushes its
// messages and its end to the supervisor's queue.

import { type ChildProcess, fork, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Adapter } from "./_adapter.ts";
import { type EventQueue, parseLine, type WorkerMessage } from "./_events.ts";
import type { ListenerPlan } from "./plan.ts";
import { FDS_VARIABLE } from "./workers.ts";

/** Everything a worker is told: what to run, its slot, and the plans it listens from. */
export interface WorkerSpec {
  /** URL of the module to run: a fetch app (`kind: "app"`) or a module that calls workerContext(). */
  readonly module: string;
  readonly kind: "app" | "worker";
  readonly plans: ListenerPlan[];
  readonly index: number;
  readonly generation: number;
  readonly workers: number;
  readonly graceMs: number;
  readonly workerHeader: boolean;
  /** HTTPS: the certificate chain and private key files (PEM), read by each worker as it starts. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /**
   * A worker thread's lent sockets: the primary's descriptors of them, by key (a worker process
   * inherits its own instead: POLYBIND_FDS). The thread serves copies of them.
   */
  readonly lentFds?: Record<string, number>;
}

/** How long after a worker process exits its output may still be read (something it started may hold it). */
const EXIT_READ_MS = 500;

/** A running worker, thread or process. */
export interface WorkerHandle {
  /** The worker's process, where it is one: a shared socket is lent to it. */
  readonly process?: ChildProcess;
  /** Asks the worker to stop serving, report and end. */
  stop(): void;
  /** Ends the worker at once. */
  kill(): void;
}

interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(
    type: "message" | "error" | "close",
    listener: (event: { data?: unknown; message?: string; preventDefault?(): void }) => void,
  ): void;
}
type WebWorkerConstructor = new (url: URL, options: { type: "module" }) => WebWorker;

/** The runtime's Web Worker class (Deno, Bun), where it has one. */
export function webWorker(): WebWorkerConstructor | undefined {
  const w = (globalThis as { Worker?: unknown }).Worker;
  return typeof w === "function" ? w as WebWorkerConstructor : undefined;
}

/** The worker entry point next to this file: .ts where this runs from sources, .js when built. */
function entry(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./_worker_main.ts" : "./_worker_main.js", import.meta.url);
}

/** What a worker thread says first: its entry has run, and it takes its spec now. */
export interface ThreadLoaded {
  polybind: "loaded";
}

/** Starts a worker as a thread of this process; it dies with this process. */
export function startThread(spec: WorkerSpec, id: number, events: EventQueue): WorkerHandle {
  const Worker = webWorker()!;
  const thread = new Worker(entry(), { type: "module" });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    thread.terminate();
    events.push({ kind: "exit", id });
  };
  // A thread takes messages once its entry has run, after its imports (which wait for the
  // runtime's adapter to load): one sent sooner can be lost, so the spec goes when it says so.
  let loaded = false;
  thread.addEventListener("message", ({ data }) => {
    if ((data as ThreadLoaded).polybind === "loaded") {
      loaded = true;
      return thread.postMessage({ polybind: "start", spec });
    }
    const message = data as WorkerMessage;
    events.push({ kind: "message", id, message });
    if (message.polybind === "served" || message.polybind === "failed") end();
  });
  // An error the thread did not handle: said as a failure, not thrown again in this process.
  thread.addEventListener("error", (event) => {
    event.preventDefault?.();
    events.push({ kind: "message", id, message: { polybind: "failed", message: event.message ?? "error" } });
    end();
  });
  // Bun tells a thread's end (after an uncaught error, or an exit) with 'close'.
  thread.addEventListener("close", end);
  // Stopped before it has even loaded, it has nothing to drain.
  const stop = () => loaded ? thread.postMessage({ polybind: "stop" }) : end();
  return { stop: () => void (ended || stop()), kill: end };
}

/**
 * Ends a system call a ready worker process may be blocked in, so that it reads what it is sent:
 * an accept(2) on a lent socket that a spawn elsewhere left in blocking mode (Deno's clears
 * O_NONBLOCK on each descriptor it passes, and the flag is the socket's, shared by every copy)
 * blocks the worker's event loop until a connection comes. A signal it catches ends it: SIGWINCH,
 * which a worker ignores and no runtime uses (SIGUSR2 makes Node.js write a diagnostic report
 * where reports on signal are on). Sent with process.kill: Deno's ChildProcess.kill() closes the
 * child's stdin and IPC channel whatever the signal.
 */
function wake(child: ChildProcess): void {
  if (process.platform === "win32" || child.pid === undefined) return;
  try {
    process.kill(child.pid, "SIGWINCH");
  } catch {
    // It has exited: its 'exit' comes.
  }
}

/**
 * Starts a worker as a process of this runtime, with its spec in the environment. Its stdin is
 * a pipe that only this process holds: "stop" on it asks for a stop, and its end tells the
 * worker that this process is gone, however it went (even SIGKILL). Its output lines are its
 * messages; any other line is the app's own, passed on.
 */
export function startProcess(
  a: Adapter,
  spec: WorkerSpec,
  id: number,
  events: EventQueue,
  inherit: { key: string; fd: number }[],
): WorkerHandle {
  // A file path, or the URL itself where the module came from the network (Deno from JSR).
  const url = entry();
  const script = url.protocol === "file:" ? fileURLToPath(url) : url.href;
  // Lent sockets it inherits come after its standard streams, from descriptor 3.
  const fds = Object.fromEntries(inherit.map((s, i) => [s.key, 3 + i]));
  // Workers taking from one socket take a connection at a time (unless this process's environment says otherwise).
  const shared = spec.plans.some((p) => p.strategy === "shared" && p.workers > 1);
  const env = {
    ...(shared ? a.workerProcess.sharedAcceptEnv : {}),
    ...process.env,
    POLYBIND_WORKER_SPEC: JSON.stringify(spec),
    [FDS_VARIABLE]: JSON.stringify(fds),
  };
  const stdio: ("pipe" | "inherit" | number)[] = ["pipe", "pipe", "inherit", ...inherit.map((s) => s.fd)];
  const [execPath, execArgv] = a.workerProcess.command();
  // With an IPC channel where the runtime has one, over which a shared socket is lent.
  const child = a.workerProcess.ipc
    ? fork(script, [], { env, stdio: [...stdio, "ipc"], execPath, execArgv })
    : spawn(execPath, [...execArgv, script], { env, stdio });
  let ended = false;
  let ready = false;
  const end = () => {
    if (!ended) events.push({ kind: "exit", id });
    ended = true;
  };
  // An 'error' without a pid: it could not start.
  child.on("error", (err) => {
    if (child.pid !== undefined) return;
    events.push({ kind: "message", id, message: { polybind: "failed", message: err.message } });
    end();
  });
  child.stdin!.on("error", () => {});
  const output = createInterface({ input: child.stdout! });
  output.on("line", (line) => {
    const { text, message } = parseLine(line);
    if (text !== undefined) process.stdout.write(text + "\n");
    if (message?.polybind === "ready") ready = true;
    if (message) events.push({ kind: "message", id, message });
  });
  // Its end: once its output is read to the end, or shortly after it exits where something it
  // started still holds that output.
  const read = new Promise<void>((resolve) => output.once("close", resolve));
  child.once("exit", (code, signal) => {
    // How it ended, after all it said (a worker's own word on its failure comes first).
    const how = signal ? `the worker was killed (${signal})` : `the worker exited (code ${code})`;
    const finish = () => {
      clearTimeout(timer);
      if (!ended) events.push({ kind: "message", id, message: { polybind: "failed", message: how } });
      end();
    };
    const timer = setTimeout(finish, EXIT_READ_MS);
    void read.then(finish);
  });
  return {
    process: child,
    stop: () => {
      if (ended) return;
      child.stdin!.write("stop\n");
      if (ready) wake(child);
    },
    kill: () => void (ended || child.kill("SIGKILL")),
  };
}
