// Shared parts of the stress tests: a line server on polybind listeners, a load client in its own
// Node.js process, garbage collection where the runtime exposes it, and figures printed with the
// test output (run.mjs collects them), and the kernel setting that decides what closing a
// SO_REUSEPORT socket loses.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { capabilities } from "../mod.ts";

/** Prints a measured figure, tagged so that run.mjs can list it at the end. */
export function figure(text: string): void {
  const caps = capabilities();
  console.log(`[figure] ${caps.runtime} ${caps.version}: ${text}`);
}

/** The repository root, from here or from the tsc output in .build/. */
function root(): string {
  const here = fileURLToPath(import.meta.url);
  const build = here.indexOf("/.build/");
  return build >= 0 ? here.slice(0, build) : dirname(dirname(here));
}

/** What the load client reports. */
export interface LoadResult {
  total: number;
  ok: number;
  errors: Record<string, number>;
  ms: number;
}

/**
 * Runs `total` request/response connections against `port` from a Node.js process,
 * `concurrency` at a time. `onProgress` is called every 1000 connections.
 */
export function runClient(
  port: number,
  total: number,
  concurrency: number,
  onProgress: (done: number) => void = () => {},
): Promise<LoadResult> {
  const child = spawn(
    "node",
    [join(root(), "stress", "_client.mjs"), String(port), String(total), String(concurrency)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  return new Promise((resolve, reject) => {
    let buffered = "";
    let result: LoadResult | undefined;
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const message = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if ("progress" in message) onProgress(message.progress);
        else result = message;
      }
    });
    child.once("exit", (code) => (result ? resolve(result) : reject(new Error(`load client exited with ${code}`))));
  });
}

/** Collects garbage where the runtime allows (node --expose-gc, deno --v8-flags=--expose-gc, Bun). */
export function collectGarbage(): boolean {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc();
  else return false;
  return true;
}

/** Heap in use and resident set size, in MiB. */
export function memory(): { heap: number; rss: number } {
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 2 ** 20, rss: m.rss / 2 ** 20 };
}

/** net.ipv4.tcp_migrate_req of this network namespace ("absent" where the kernel has none). */
export function migrateReq(): string {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim();
  } catch {
    return "absent";
  }
}
