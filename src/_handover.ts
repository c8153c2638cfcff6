// A supervisor's sockets from one primary to the next (SIGUSR2): the old one hands each lent
// socket over as an inherited descriptor named for its place in `listen` (a lent reuseport
// plan's in worker order, so that each new worker is lent its own again), and the port of each
// socket its workers bind beside; the new one listens on those (`parent-listen:listen-N`) or
// joins those ports, and says when it serves.

import type { Platform } from "./_adapter.ts";
import { PARENT_LISTEN } from "./_systemd.ts";
import { parseAddress } from "./address.ts";
import { isLent } from "./_plan.ts";
import type { ListenerPlan } from "./plan.ts";
import { type HandedSocket, startSuccessor, type Successor } from "./successor.ts";
import type { ServerConfig } from "./types.ts";
import type { PreparedPlan } from "./workers.ts";

/** Where a predecessor's workers bind beside: each `listen` entry's port, by index. */
const JOIN_VARIABLE = "POLYBIND_LISTEN_JOIN";

/** The `listen` entries whose handed sockets come in one group for each worker: entry index to workers. */
const GROUPS_VARIABLE = "POLYBIND_LISTEN_GROUPS";

/** The generation a new primary's first workers are: the one after its predecessor's. */
const GENERATION_VARIABLE = "POLYBIND_GENERATION";

/** The first generation of this primary's workers: 1, or the one after its predecessor's. */
export function firstGeneration(platform: Platform): number {
  if (platform.env(PARENT_LISTEN.pid) !== String(platform.ppid)) return 1;
  const n = Number(platform.env(GENERATION_VARIABLE));
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** The name of the sockets of the `i`th `listen` entry. */
const nameOf = (i: number) => `listen-${i}`;

/** A `listen` entry as this primary serves it: as given, or taken over from a predecessor. */
export interface TakenConfig {
  readonly config: ServerConfig | string;
  /** Join the predecessor's SO_REUSEPORT sockets on the port rather than claim it. */
  readonly join: boolean;
  /** The handed sockets are one group for each of this many workers (a lent reuseport plan's). */
  readonly groups?: number;
}

/**
 * The `listen` entries of a primary that a predecessor started (its sockets handed over, its
 * ports to join), or as given.
 */
export function takeOver(configs: readonly (ServerConfig | string)[], platform: Platform): TakenConfig[] {
  if (platform.env(PARENT_LISTEN.pid) !== String(platform.ppid)) {
    return configs.map((config) => ({ config, join: false }));
  }
  const names = new Set((platform.env(PARENT_LISTEN.names) ?? "").split(":"));
  const joins = JSON.parse(platform.env(JOIN_VARIABLE) ?? "{}") as Record<string, number>;
  const groups = JSON.parse(platform.env(GROUPS_VARIABLE) ?? "{}") as Record<string, number>;
  return configs.map((given, i) => {
    const config = typeof given === "string" ? parseAddress(given) : given;
    const { fd: _fd, systemd: _systemd, parent: _parent, uds: _uds, host: _host, port: _port, ...rest } = config;
    if (names.has(nameOf(i))) {
      const handed = { config: { ...rest, parent: nameOf(i) }, join: false };
      return groups[String(i)] === undefined ? handed : { ...handed, groups: groups[String(i)] };
    }
    const port = joins[String(i)];
    return port === undefined ? { config: given, join: false } : { config: { ...config, port }, join: true };
  });
}

/**
 * Starts a new primary with this one's sockets: lent ones as descriptors, the ports of those
 * bound beside to join. The reason instead, where a socket can be neither.
 */
export function handOver(prepared: readonly PreparedPlan[], generation: number): Successor | string {
  const sockets: HandedSocket[] = [];
  const joins: Record<string, number> = {};
  const groups: Record<string, number> = {};
  for (const [i, p] of prepared.entries()) {
    const plan: ListenerPlan = p.plan;
    const fds = p.descriptors();
    if (isLent(plan) && fds.length === plan.sockets * (plan.lent ? plan.workers : 1)) {
      // In worker order (descriptors() gives them so): the successor lends each worker its group again.
      sockets.push(...fds.map(({ fd }) => ({ name: nameOf(i), fd })));
      if (plan.lent) groups[String(i)] = plan.workers;
    } else if (plan.strategy === "reuseport" && plan.address.transport === "tcp") {
      joins[String(i)] = plan.address.port;
    } else {
      return `its socket ${i + 1} (${plan.strategy}) can be neither handed over nor bound beside`;
    }
  }
  const env = {
    [JOIN_VARIABLE]: JSON.stringify(joins),
    [GROUPS_VARIABLE]: JSON.stringify(groups),
    [GENERATION_VARIABLE]: String(generation + 1),
  };
  return startSuccessor(sockets, { env });
}
