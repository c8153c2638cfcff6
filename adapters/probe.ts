// Detects the runtime, once, at import time, and installs its adapter. The only place in
// polybind that asks which runtime it runs on.

import { useAdapter } from "../src/_adapter.ts";
import type { Runtime } from "../src/types.ts";
import { bunAdapter } from "./bun.ts";
import { denoAdapter } from "./deno.ts";
import { nodeAdapter } from "./node.ts";

/** The runtime running this code. */
export function detectRuntime(): Runtime {
  const g = globalThis as { Deno?: { version?: unknown }; Bun?: unknown };
  if (g.Deno?.version !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}

const ADAPTERS = { deno: denoAdapter, bun: bunAdapter, node: nodeAdapter };

useAdapter(ADAPTERS[detectRuntime()]);
