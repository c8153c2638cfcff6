// Capabilities found out once per adapter, from its probes and the kernel's behaviour: the
// synchronous answer (which may block where probing binds asynchronously) and the async one.

import type { Adapter } from "./_adapter.ts";
import { kernelBalances } from "./_strategy.ts";
import type { Capabilities } from "./types.ts";

const known = new WeakMap<Adapter, Capabilities>();
const probing = new WeakMap<Adapter, Promise<Capabilities>>();

function build(a: Adapter, tcp: boolean, udp: boolean): Capabilities {
  const caps = Object.freeze({
    runtime: a.runtime,
    version: a.version,
    os: a.os,
    reusePort: Object.freeze({ tcp, udp }),
    udp: a.udp,
    unix: a.unix,
    backlog: a.backlog,
    processShare: a.share !== undefined,
    lendReusePort: kernelBalances(a.os) && a.share?.reusePort === true,
    migrateReq: a.platform.readTextSync("/proc/sys/net/ipv4/tcp_migrate_req")?.trim() === "1",
  });
  known.set(a, caps);
  return caps;
}

/** The capabilities of `a`, probed synchronously the first time (see capabilities()). */
export function capsOf(a: Adapter): Capabilities {
  const balances = kernelBalances(a.os);
  return known.get(a) ?? build(a, balances && a.reusePortBinds("tcp"), balances && a.udp && a.reusePortBinds("udp"));
}

/** The capabilities of `a`, probed without blocking the event loop the first time. */
export function probeCapsOf(a: Adapter): Promise<Capabilities> {
  const caps = known.get(a);
  if (caps) return Promise.resolve(caps);
  let p = probing.get(a);
  if (p === undefined) {
    p = (async () => {
      const balances = kernelBalances(a.os);
      const tcp = balances && await a.probeReusePort("tcp");
      const udp = balances && a.udp && await a.probeReusePort("udp");
      return known.get(a) ?? build(a, tcp, udp);
    })();
    probing.set(a, p);
  }
  return p;
}
