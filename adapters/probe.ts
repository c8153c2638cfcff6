// Detects the runtime, once, at import time, and installs its adapter. The only place in
// polybind that asks which runtime it runs on. Only that runtime's adapter is loaded: a worker
// carries no code (and no node: modules) it will never run.

import { useAdapter } from "../src/_adapter.ts";
import type { Runtime } from "../src/types.ts";

/** The runtime running this code. */
export function detectRuntime(): Runtime {
  const g = globalThis as { Deno?: { version?: unknown }; Bun?: unknown };
  if (g.Deno?.version !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}

const runtime = detectRuntime();
useAdapter(
  runtime === "deno"
    ? (await import("./deno.ts")).denoAdapter
    : runtime === "bun"
    ? (await import("./bun.ts")).bunAdapter
    : (await import("./node.ts")).nodeAdapter,
);
