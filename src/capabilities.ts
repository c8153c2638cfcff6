// What this runtime and OS really support, from the adapter's probes and the kernel's behaviour.

import { adapter } from "./adapter.ts";
import { kernelBalances } from "./strategy.ts";
import type { Capabilities } from "./types.ts";

let cached: Capabilities | undefined;

/**
 * Reports what this runtime and OS support. SO_REUSEPORT is probed for real, once, by binding
 * two sockets on one loopback port, and counts only where the kernel also balances the load.
 *
 * @returns The capabilities (the same object on every call).
 * @example
 * ```ts
 * import { capabilities } from "../mod.ts";
 * const caps = capabilities();
 * console.assert(typeof caps.reusePort.tcp === "boolean");
 * ```
 */
export function capabilities(): Capabilities {
  if (cached) return cached;
  const a = adapter();
  const balances = kernelBalances(a.os);
  cached = Object.freeze({
    runtime: a.runtime,
    version: a.version,
    os: a.os,
    reusePort: Object.freeze({
      tcp: balances && a.reusePortBinds("tcp"),
      udp: balances && a.udp && a.reusePortBinds("udp"),
    }),
    udp: a.udp,
    unix: a.unix,
    backlog: a.backlog,
    processShare: a.handOff !== undefined,
  });
  return cached;
}

/**
 * Whether independent sockets really share a TCP port with the kernel spreading connections
 * (the same as `capabilities().reusePort.tcp`).
 *
 * @returns `true` where `createListeners` gives every worker its own socket.
 * @example
 * ```ts
 * import { hasReusePort } from "../mod.ts";
 * console.log(hasReusePort() ? "one socket per worker" : "one shared socket");
 * ```
 */
export function hasReusePort(): boolean {
  return capabilities().reusePort.tcp;
}

/** Forgets the probed capabilities (for tests that swap adapters). */
export function _resetCapabilities(): void {
  cached = undefined;
}
