// What this runtime and OS really support: capabilities(), probeCapabilities(), hasReusePort().

import { adapter } from "./_adapter.ts";
import { capsOf, probeCapsOf } from "./_caps.ts";
import type { Capabilities } from "./types.ts";

/**
 * Reports what this runtime and OS support. SO_REUSEPORT is probed for real, once, by binding
 * two sockets on one loopback port, and counts only where the kernel also balances the load.
 * Every async polybind call probes without blocking ({@linkcode probeCapabilities}); asked
 * before any of them, on Node.js this call probes in a child process and blocks for about
 * 150 ms: a server that already serves other traffic awaits `probeCapabilities()` instead.
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
  return capsOf(adapter());
}

/**
 * Probes what this runtime and OS support without blocking the event loop (sockets are bound
 * asynchronously, in this process), once; then {@linkcode capabilities} answers at once.
 *
 * @returns The capabilities, the same object `capabilities()` returns from then on.
 * @example
 * ```ts
 * import { capabilities, probeCapabilities } from "../mod.ts";
 * const caps = await probeCapabilities();
 * console.assert(caps === capabilities());
 * ```
 */
export function probeCapabilities(): Promise<Capabilities> {
  return probeCapsOf(adapter());
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
