// A `polybind serve` worker run as a thread (a Web Worker, on Deno and Bun) rather than a
// process: it serves its part of the plans and reports like a worker process, by message.

import { checkPlan } from "../mod.ts";
import { startWorkerServer, type WorkerServer } from "./http.ts";

/** What the primary sends a worker thread. */
export type ThreadCommand = { polybind: "start"; plans: unknown[]; worker: number } | { polybind: "stop" };

interface WorkerScope {
  onmessage: ((event: { data: ThreadCommand }) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
let server: Promise<WorkerServer> | undefined;
let worker = 0;

scope.onmessage = async ({ data }) => {
  if (data.polybind === "start") {
    worker = data.worker;
    try {
      server = startWorkerServer(data.plans.map(checkPlan), worker);
      await server;
    } catch (err) {
      // Said to the primary, which prints it and stops: a worker process would exit with 1.
      scope.postMessage({ polybind: "failed", worker, message: err instanceof Error ? err.message : String(err) });
      scope.close();
      return;
    }
    scope.postMessage({ polybind: "ready", worker });
  } else if (server !== undefined) {
    // A start that failed has been reported; the primary ends this thread.
    const s = await server.catch(() => undefined);
    if (s === undefined) return;
    await s.stop();
    scope.postMessage({ polybind: "served", worker, requests: s.requests });
    scope.close();
  } else scope.close();
};
