// `polybind probe`: what this runtime and OS support, as a table or JSON.

import { capabilities, planListeners } from "../mod.ts";

const yes = (b: boolean) => (b ? "yes" : "no");

/** The probe's findings as rows of [what, value]. */
export function probeRows(): [string, string][] {
  const caps = capabilities();
  const plan = planListeners({ port: 8000 }, 4);
  return [
    ["runtime", `${caps.runtime} ${caps.version}`],
    ["os", caps.os],
    ["SO_REUSEPORT (TCP)", yes(caps.reusePort.tcp)],
    ["SO_REUSEPORT (UDP)", yes(caps.reusePort.udp)],
    ["UDP", yes(caps.udp)],
    ["Unix sockets", yes(caps.unix)],
    ["listen backlog", yes(caps.backlog)],
    ["socket shared with processes", yes(caps.processShare)],
    ["4 workers", `${plan.strategy}: ${plan.reason}`],
  ];
}

/** Prints the probe table (or JSON). */
export function runProbe(json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ capabilities: capabilities(), plan4: planListeners({ port: 8000 }, 4) }, null, 2));
    return;
  }
  const rows = probeRows();
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}
