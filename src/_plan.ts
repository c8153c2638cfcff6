// What the plan modules share inside: the config a plan stands for, and the check of a worker index.

import { describeAddr, toConfig } from "./_address.ts";
import { show } from "./_config.ts";
import type { ListenerPlan, PlanAddress } from "./plan.ts";
import type { ServerConfig } from "./types.ts";

/** The ServerConfig a plan stands for. */
export function configOf(plan: ListenerPlan): ServerConfig {
  const a = plan.address;
  const common = { backlog: plan.backlog, ...(plan.proxyProtocol ? { proxyProtocol: plan.proxyProtocol } : {}) };
  if (a.transport === "inherited") return { ...toConfig(a.spec), ...common };
  return a.transport === "unix"
    ? { uds: a.path, udsMode: plan.udsMode, ...common }
    : { host: a.hostname, port: a.port, ...common };
}

/** Checks that `index` is a worker of `plan`. */
export function checkIndex(plan: ListenerPlan, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= plan.workers) {
    const why = plan.workers < plan.requested ? ` (${plan.reason})` : "";
    throw new RangeError(
      `Cannot listen from plan as 'index' must be an integer from 0 to ${plan.workers - 1}${why}: current value is ${
        show(index)
      }`,
    );
  }
}

/** Whether the primary lends a plan's sockets to its workers: one they share, or one SO_REUSEPORT socket each. */
export function isLent(plan: ListenerPlan): boolean {
  return plan.strategy === "shared" || plan.lent === true;
}

/** A plan's address as people read it. */
export function describePlan(a: PlanAddress): string {
  return a.transport === "inherited" ? a.spec : describeAddr(a);
}

/**
 * Whether the runtime's own fetch server can serve `plan`'s address: with no PROXY header to
 * read first; HTTPS on TCP only (Deno.serve takes no certificate on a Unix socket). It binds a
 * TCP or Unix plan's own options; a lent plan's sockets (inherited ones too) come from the
 * primary, and the adapter says whether it can make its server take them.
 */
export function runtimeServes(plan: ListenerPlan, tls: boolean): boolean {
  return plan.proxyProtocol === undefined && !(tls && plan.address.transport === "unix");
}
