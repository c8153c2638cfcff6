// The entry point of a supervisor's worker, thread or process: it takes its spec, runs the
// module (serving a fetch app's default export, or letting a worker module serve through
// workerContext()), says "ready" once the module has run (a worker module has started what it
// serves by then), and on "stop" drains within the grace time, says what it served, and ends.
// A process whose supervisor is gone (its stdin ends) leaves within a second.

import "../adapters/probe.ts";
import process from "node:process";
import { describeError as describe, formatMessage, type WorkerMessage } from "./_events.ts";
import { Slot } from "./_slot.ts";
import type { ThreadLoaded, WorkerSpec } from "./_spawn.ts";
import { checkPlan } from "./plan.ts";
import type { FetchApp } from "./worker.ts";

/** How long an orphaned worker lets its requests in flight finish before it exits. */
const ORPHAN_STOP_MS = 500;

/** Runs the spec's module on `slot`; resolves once it serves. */
async function start(slot: Slot): Promise<void> {
  const spec = slot.spec;
  const module = await import(spec.module) as { default?: Partial<FetchApp> };
  if (spec.kind === "worker") return;
  const app = module.default;
  if (typeof app?.fetch !== "function") {
    throw new TypeError(`Cannot serve ${spec.module} as its default export has no fetch(request) method`);
  }
  await slot.serve(app as FetchApp);
}

function specOf(data: unknown): WorkerSpec {
  const spec = data as WorkerSpec;
  return { ...spec, plans: spec.plans.map(checkPlan) };
}

interface ThreadScope {
  onmessage: ((event: { data: { polybind: "start"; spec: unknown } | { polybind: "stop" } }) => void) | null;
  postMessage(message: WorkerMessage | ThreadLoaded): void;
  close(): void;
  addEventListener(
    type: "error" | "unhandledrejection",
    listener: (event: { error?: unknown; reason?: unknown; preventDefault(): void }) => void,
  ): void;
}

/**
 * Makes an exit of this thread (process.exit, Deno.exit) say so first: a Web Worker that ends
 * by itself gives its parent no event on every runtime.
 */
function sayExits(say: (message: WorkerMessage) => void): void {
  const holders = [
    process as { exit(code?: number): never },
    (globalThis as { Deno?: { exit(code?: number): never } }).Deno,
  ];
  for (const holder of holders) {
    if (!holder) continue;
    const exit = holder.exit.bind(holder);
    holder.exit = (code?: number) => {
      say({ polybind: "failed", message: `the worker exited (code ${code ?? 0})` });
      return exit(code);
    };
  }
}

/** A worker thread: messages come and go by postMessage. */
function runThread(scope: ThreadScope): void {
  let slot: Slot | undefined;
  let started: Promise<void> | undefined;
  let ready = false;
  const say = (message: WorkerMessage) => scope.postMessage(message);
  sayExits(say);
  // What the app did not catch: said to the supervisor, which starts a replacement and then stops
  // this one. Both ways of hearing of it: Bun ends a thread after its 'error' event unless the
  // thread has a process 'uncaughtException' handler; Deno tells the event.
  const fault = (err: unknown) => say({ polybind: ready ? "faulted" : "failed", message: describe(err) });
  process.on("uncaughtException", fault);
  process.on("unhandledRejection", fault);
  for (const type of ["error", "unhandledrejection"] as const) {
    scope.addEventListener(type, (event) => {
      event.preventDefault();
      fault(type === "error" ? event.error : event.reason);
    });
  }
  scope.onmessage = async ({ data }) => {
    if (data.polybind === "start") {
      slot = new Slot(specOf(data.spec), (message) => say({ polybind: "error", message }));
      started = start(slot);
      try {
        await started;
      } catch (err) {
        say({ polybind: "failed", message: describe(err) });
        return;
      }
      ready = true;
      say({ polybind: "ready", addrs: slot.addrs });
    } else {
      if (!slot || !(await started!.then(() => true, () => false))) return scope.close();
      await slot.stop(slot.spec.graceMs);
      say({ polybind: "served", requests: slot.requests });
      scope.close();
    }
  };
  scope.postMessage({ polybind: "loaded" });
}

/** Writes one message to the supervisor; resolves once written (or failed: the supervisor is gone). */
function say(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => process.stdout.write(formatMessage(message), () => resolve()));
}

/**
 * Why a worker process stops: asked to (by its supervisor, which writes "stop" on the worker's
 * stdin, or by a signal such as a terminal's Ctrl-C), or orphaned: its supervisor is gone,
 * however it went (stdin ends; on Node.js the IPC channel closes too).
 */
function stopRequest(): Promise<"asked" | "orphaned"> {
  return new Promise((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => resolve("asked"));
    // A reload and a new primary are the supervisor's business: a worker serves on. SIGWINCH
    // is how the supervisor wakes it from a blocked system call (see _spawn.ts).
    if (process.platform !== "win32") {
      for (const signal of ["SIGHUP", "SIGUSR2", "SIGWINCH"] as const) process.on(signal, () => {});
    }
    // Loaded here: a worker thread has no stdin of its own to read. Lines wait in the pipe meanwhile.
    void import("node:readline").then(({ createInterface }) => {
      const lines = createInterface({ input: process.stdin });
      lines.on("line", (line) => line === "stop" && resolve("asked"));
      lines.on("close", () => resolve("orphaned"));
    });
    if (process.connected) process.once("disconnect", () => resolve("orphaned"));
  });
}

/** A worker process: serves until asked to stop, then says what it served. An orphan leaves quietly. */
async function runProcess(spec: WorkerSpec): Promise<void> {
  // A write to a supervisor that has gone fails with EPIPE: nothing to say, nothing to print.
  process.stdout.on("error", () => {});
  // What the app did not catch: one line to the supervisor, not a stack trace. Before the worker
  // serves, it ends; after, it goes on serving until the supervisor has started its replacement.
  let ready = false;
  const fault = (err: unknown) => {
    if (ready) return void say({ polybind: "faulted", message: describe(err) });
    void say({ polybind: "failed", message: describe(err) }).then(() => process.exit(1));
  };
  process.on("uncaughtException", fault);
  process.on("unhandledRejection", fault);
  const stop = stopRequest();
  const slot = new Slot(spec, (message) => void say({ polybind: "error", message }));
  const starting = start(slot).then(() => "started" as const, (err: unknown) => err);
  const first = await Promise.race([starting, stop]);
  if (first === "orphaned") process.exit(0);
  if (first !== "asked") {
    const started = await starting;
    if (started !== "started") return fault(started);
  }
  ready = true;
  await say({ polybind: "ready", addrs: slot.addrs });
  if ((await stop) === "orphaned") {
    await slot.stop(ORPHAN_STOP_MS);
    process.exit(0);
  }
  await slot.stop(spec.graceMs);
  await say({ polybind: "served", requests: slot.requests });
  // The stdin reader (and on Node.js the IPC channel) would keep this process alive.
  process.exit(0);
}

const spec = process.env.POLYBIND_WORKER_SPEC;
if (spec !== undefined) await runProcess(specOf(JSON.parse(spec)));
else runThread(globalThis as unknown as ThreadScope);
