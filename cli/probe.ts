// `polybind probe`: what this runtime and OS support, as a table or JSON.

import { capabilities, type ListenerPlan, planHandover, planListeners } from "../mod.ts";

const yes = (b: boolean) => (b ? "yes" : "no");

/** How `polybind serve --workers 4` would get its sockets: lent by this process where it reloads so. */
function servePlan(): ListenerPlan {
  const lend = capabilities().processShare && planHandover().handover === "lend";
  return planListeners({ port: 8000 }, 4, { lend });
}

/** A plan's strategy, and whether its sockets are lent: `reuseport, lent`. */
export const strategyOf = (plan: ListenerPlan): string => `${plan.strategy}${plan.lent ? ", lent" : ""}`;

/** The probe's findings as rows of [what, value]. */
export function probeRows(): [string, string][] {
  const caps = capabilities();
  const plan = planListeners({ port: 8000 }, 4);
  const served = servePlan();
  const handover = planHandover();
  return [
    ["runtime", `${caps.runtime} ${caps.version}`],
    ["os", caps.os],
    ["SO_REUSEPORT (TCP)", yes(caps.reusePort.tcp)],
    ["SO_REUSEPORT (UDP)", yes(caps.reusePort.udp)],
    ["UDP", yes(caps.udp)],
    ["Unix sockets", yes(caps.unix)],
    ["listen backlog", yes(caps.backlog)],
    ["socket shared with processes", yes(caps.processShare)],
    ["SO_REUSEPORT socket lent to each process", yes(caps.lendReusePort)],
    ["tcp_migrate_req", caps.migrateReq ? "1" : "0 (or none)"],
    ["4 workers", `${plan.strategy}: ${plan.reason}`],
    ["polybind serve, 4 workers", `${strategyOf(served)}: ${served.reason}`],
    ["reload", `${handover.handover}: ${handover.reason}`],
  ];
}

/** Prints the probe table (or JSON). */
export function runProbe(json: boolean): void {
  if (json) {
    const report = {
      capabilities: capabilities(),
      plan4: planListeners({ port: 8000 }, 4),
      serve4: servePlan(),
      reload: planHandover(),
    };
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const rows = probeRows();
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}
