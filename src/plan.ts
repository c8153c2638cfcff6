// Worker plans: a serializable decision of how N workers (other processes or isolates) get
// their listeners. Pure: the same config and capabilities always give the same plan.

import { adapter } from "./_adapter.ts";
import { toConfig } from "./_address.ts";
import { formatAddress } from "./address.ts";
import { capabilities } from "./capabilities.ts";
import { checkCount, checkFlags, normalizeConfig } from "./_config.ts";
import { decideStrategy, type Strategy } from "./_strategy.ts";
import type { ProxyProtocolOptions } from "./_proxy_options.ts";
import type { Capabilities, ServerConfig } from "./types.ts";

/** The PROXY protocol options of a config, as plain JSON (checked by normalizeConfig before). */
function proxyOf(config: ServerConfig): true | ProxyProtocolOptions {
  const p = config.proxyProtocol;
  return p === true || p === undefined || p === false ? true : JSON.parse(JSON.stringify(p));
}

/** How the workers of a plan get their sockets (the one strategy type of polybind). */
export type PlanStrategy = Strategy;

/** Where a plan listens. */
export type PlanAddress =
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number }
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "inherited"; readonly spec: string };

/**
 * A plan for `workers` accepting workers, as plain JSON: send it to a worker in an environment
 * variable or a message, and call {@linkcode listenFromPlan} there.
 */
export interface ListenerPlan {
  /** Marks the object as a polybind plan. */
  readonly kind: "polybind-plan";
  /** `"reuseport"`: each worker binds its own socket on the port (or is lent one: see `lent`); `"shared"`: the primary binds one socket and hands it to each worker; `"single"`: one worker binds. */
  readonly strategy: PlanStrategy;
  /**
   * A reuseport plan whose sockets the primary binds, one SO_REUSEPORT socket for each worker
   * (not listening), or inherited in one group for each worker (`perWorker`), and lends to each
   * generation of that worker for the plan's whole life.
   */
  readonly lent?: true;
  /** Why this strategy, in words a person reads in a log. */
  readonly reason: string;
  /** How many workers were asked for. */
  readonly requested: number;
  /** How many workers accept connections (1 where the runtime can neither reuse nor share a port). */
  readonly workers: number;
  /** The address: host as configured (resolved by {@linkcode preparePlan}), or a socket path. */
  readonly address: PlanAddress;
  /** Listen backlog. */
  readonly backlog: number;
  /** Mode of the Unix socket file. */
  readonly udsMode: number;
  /** Whether {@linkcode preparePlan} has resolved the host and port for the workers. */
  readonly prepared: boolean;
  /** How many sockets each worker gets from the primary (several where systemd passed several). */
  readonly sockets: number;
  /** The IP addresses a TCP host resolved to, all bound on the plan's port (set by {@linkcode preparePlan}). */
  readonly resolved?: readonly string[];
  /** Whether {@linkcode preparePlan} joins reuseport sockets already on the address rather than failing. */
  readonly join?: boolean;
  /** The config's `proxyProtocol`: each worker's listener reads a PROXY protocol header first. */
  readonly proxyProtocol?: true | ProxyProtocolOptions;
}

/** Options of {@linkcode planListeners}. */
export interface PlanOptions {
  /**
   * One socket shared by all workers, even where SO_REUSEPORT would work.
   * @default {false}
   */
  shared?: boolean;
  /**
   * The capabilities to plan for.
   * @default {capabilities()}
   */
  capabilities?: Capabilities;
  /**
   * Join SO_REUSEPORT sockets already listening on the address (a new generation beside an old
   * one) instead of failing with EADDRINUSE in {@linkcode preparePlan}.
   * @default {false}
   */
  join?: boolean;
  /**
   * Worker processes whose sockets the primary keeps for the server's whole life and lends to
   * each generation (a worker replaced never closes one): one SO_REUSEPORT socket for each
   * worker where the runtime and the kernel can (`lent: true` on a reuseport plan), else one
   * socket they share.
   * @default {false}
   */
  lend?: boolean;
  /**
   * With `lend`, for inherited sockets (`fd://`, `sd-listen`, `parent-listen`): they come in
   * one equal group for each worker, in worker order, as a predecessor's lent reuseport plan
   * hands them to its successor (SO_REUSEPORT sockets on one port); each worker is then lent its
   * own group (`lent: true` on a reuseport plan) instead of all of them.
   * @default {false}
   */
  perWorker?: boolean;
}

/**
 * Plans how `count` workers get listeners on `config`'s address. Pure: nothing is bound and the
 * host is not resolved here (see {@linkcode preparePlan}).
 *
 * @param config Where to listen.
 * @param count How many workers, from 1.
 * @param options `shared`, `lend`, `join`, `perWorker`, and the capabilities to plan for (default: this runtime's).
 * @returns A plan that serializes to JSON.
 * @throws {RangeError} `count` is not a positive integer, or a config field is out of range.
 * @throws {TypeError} A config field has the wrong type.
 * @example
 * ```ts
 * import { planListeners } from "../mod.ts";
 * const plan = planListeners({ port: 8000 }, 4);
 * console.log(plan.strategy, plan.reason);
 * ```
 */
export function planListeners(config: ServerConfig | string, count: number, options: PlanOptions = {}): ListenerPlan {
  checkCount(count);
  const flags = checkFlags(options, ["shared", "join", "lend", "perWorker"]);
  const caps = options.capabilities ?? capabilities();
  const c = normalizeConfig(toConfig(config), caps.os);
  const { strategy, workers, reason, lent } = decideStrategy({
    placement: c.kind === "fd" || c.kind === "systemd" ? "inherited" : c.kind,
    transport: "tcp",
    count,
    shared: flags.shared,
    lend: flags.lend,
    perWorker: flags.perWorker,
    across: "processes",
    caps,
    // What this runtime lacks says nothing of capabilities given for another.
    missing: options.capabilities === undefined ? adapter().missing("reusePort.tcp") : undefined,
  });
  const address: PlanAddress = c.kind === "unix"
    ? { transport: "unix", path: c.path }
    : c.kind === "inet"
    ? { transport: "tcp", hostname: c.host, port: c.port }
    : { transport: "inherited", spec: formatAddress(toConfig(config)) };
  return {
    kind: "polybind-plan",
    strategy,
    ...(lent ? { lent } : {}),
    reason,
    requested: count,
    workers,
    address,
    backlog: c.backlog,
    udsMode: c.kind === "unix" ? c.mode : 0o660,
    prepared: false,
    sockets: 1,
    ...(flags.join ? { join: true } : {}),
    ...(c.proxy === undefined ? {} : { proxyProtocol: proxyOf(toConfig(config)) }),
  };
}

/**
 * Checks that `value` is a plan (for example one parsed from JSON) and returns it.
 *
 * @param value A plan, for example parsed from JSON in a worker.
 * @returns The value, typed as a ListenerPlan.
 * @throws {TypeError} `value` is not a polybind plan.
 * @example
 * ```ts
 * import { checkPlan, planListeners } from "../mod.ts";
 * const plan = checkPlan(JSON.parse(JSON.stringify(planListeners({ port: 0 }, 2))));
 * console.assert(plan.requested === 2);
 * ```
 */
export function checkPlan(value: unknown): ListenerPlan {
  const p = value as Partial<ListenerPlan> | null;
  const ok = typeof p === "object" && p !== null && p.kind === "polybind-plan" &&
    (p.strategy === "single" || p.strategy === "reuseport" || p.strategy === "shared") &&
    Number.isInteger(p.workers) && typeof p.address === "object" && p.address !== null;
  if (!ok) {
    throw new TypeError(`Cannot use plan as it is not a polybind plan: current value is ${JSON.stringify(value)}`);
  }
  return p as ListenerPlan;
}
