// Equal CPU shares for servers loaded at the same time (`--concurrent`). Each server runs in a
// cgroup of its own with the same weight, so that when two servers share CPU 0 the kernel
// splits the core between the two servers, not between their threads: without it a server of
// 3 processes gets 3 shares to another's 2, and the rate ratio measures that, not the cost of a
// request. With equal groups, two servers that both have work each get half the core, and the
// host's slow moments hit both alike. Linux as root, with cgroup v1's `cpu` controller or
// cgroup v2 with `cpu` enabled; elsewhere `cpuGroups()` says why and servers share by thread.
//
// With a cap, each group may also use at most that fraction of a CPU. Where the load generator
// cannot keep two servers busy (new connections through wrk's Lua, one core for the client),
// servers that wait for work show their latency, not their cost: capped below what the client
// can feed, both servers are busy all the time and the rate ratio is again the ratio of costs.

import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const V1 = "/sys/fs/cgroup/cpu";
const V2 = "/sys/fs/cgroup";

/** The directory new groups go in, or why there is none. */
function parent() {
  if (process.platform !== "linux") return { why: "cgroups are Linux's" };
  if (process.getuid?.() !== 0) return { why: "making a cgroup needs root" };
  try {
    readFileSync(join(V1, "cpu.shares"));
    return { dir: V1, weight: "cpu.shares", value: "1024", period: "cpu.cfs_period_us", quota: "cpu.cfs_quota_us" };
  } catch {
    // Not cgroup v1: v2 below.
  }
  try {
    const controllers = readFileSync(join(V2, "cgroup.subtree_control"), "utf8").split(/\s+/);
    if (controllers.includes("cpu")) return { dir: V2, weight: "cpu.weight", value: "100", max: "cpu.max" };
    return { why: "cgroup v2 without the cpu controller enabled" };
  } catch (err) {
    return { why: `no cpu cgroup: ${err.message}` };
  }
}

const PREFIX = "polybind-bench-";

/** Removes `dir` if no process is in it any more; a group still in use stays. */
function removeIfEmpty(dir) {
  try {
    rmdirSync(dir);
  } catch {
    // A process is still in it (killed, not yet reaped): the next run removes it.
  }
}

/** Limits group `dir` to `cap` of one CPU, in periods of 10 ms (short, so the limit is smooth). */
function limit(p, dir, cap) {
  const period = 10_000;
  const quota = String(Math.round(cap * period));
  if (p.max) writeFileSync(join(dir, p.max), `${quota} ${period}`);
  else {
    writeFileSync(join(dir, p.period), String(period));
    writeFileSync(join(dir, p.quota), quota);
  }
}

const made = [];
process.on("exit", () => made.forEach(removeIfEmpty));

/**
 * Equal-weight CPU groups, one per server: `wrap(name, file, argv)` gives the command that starts
 * `file argv` inside group `name`, made on first use and removed when this process exits.
 *
 * @param options.cap At most this fraction of one CPU for each group (none: no limit).
 * @returns `{ wrap }`, or `{ why }` where groups cannot be made here.
 */
export function cpuGroups({ cap } = {}) {
  const p = parent();
  if (!p.dir) return { why: p.why };
  // Groups an earlier run left (its servers were killed as it exited), now empty.
  for (const name of readdirSync(p.dir).filter((n) => n.startsWith(PREFIX))) removeIfEmpty(join(p.dir, name));
  const tag = `${PREFIX}${process.pid}`;
  const wrap = (name, file, argv) => {
    const dir = join(p.dir, `${tag}-${name}`);
    if (!made.includes(dir)) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, p.weight), p.value);
      if (cap !== undefined) limit(p, dir, cap);
      made.push(dir);
    }
    // The shell moves itself into the group, then becomes the server: every thread and child
    // process the server makes is in the group from its start.
    return ["sh", ["-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, file, ...argv]];
  };
  return { wrap };
}
