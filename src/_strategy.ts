// The one strategy decision: how `count` listeners (views in one process, or worker processes)
// get their sockets. Pure: the same request and capabilities always give the same choice, and
// its reason is the sentence that listeners, plans, `polybind probe` and errors show.

import type { Handover, HandoverChoice } from "./supervise.ts";
import type { Capabilities } from "./types.ts";

/**
 * How a set of listeners is made: `single`, one socket; `reuseport`, one SO_REUSEPORT socket
 * each, the kernel balancing; `shared`, one socket they all take from.
 */
export type Strategy = "single" | "reuseport" | "shared";

/** Everything the decision depends on. */
export interface StrategyInput {
  /** What is bound: an IP address and port, a Unix socket, or inherited descriptors. */
  readonly placement: "inet" | "unix" | "inherited";
  readonly transport: "tcp" | "udp";
  /** How many listeners or workers are asked for. */
  readonly count: number;
  /** Whether one shared socket was asked for. */
  readonly shared: boolean;
  /**
   * Worker processes only: the primary keeps their sockets for the server's life and lends them
   * (one SO_REUSEPORT socket for each worker where it can, else one shared socket).
   */
  readonly lend?: boolean;
  /** With `lend`: inherited sockets in one equal group for each worker (a predecessor's lent reuseport sockets). */
  readonly perWorker?: boolean;
  /** `views`: listeners in this process; `processes`: worker processes, which a socket must be handed to. */
  readonly across: "views" | "processes";
  readonly caps: Capabilities;
  /** What would enable SO_REUSEPORT on this runtime, when it is off (from the adapter), if known. */
  readonly missing?: string;
}

/** A strategy, how many of the listeners or workers accept, and the sentence that explains it. */
export interface StrategyChoice {
  readonly strategy: Strategy;
  readonly workers: number;
  readonly reason: string;
  /** A reuseport choice whose sockets the primary binds and lends, one for each worker. */
  readonly lent?: true;
}

/**
 * Decides how generations of workers get their sockets: beside, where the kernel moves a
 * closing socket's queue to the others (tcp_migrate_req) and the server the workers would run
 * beside stops without dropping what it accepted; else lent, where the runtime can; else
 * beside, as nothing else is possible.
 *
 * @param caps The capabilities.
 * @param reusePort Whether the workers can bind SO_REUSEPORT sockets.
 * @param asked What was asked for: `auto`, or one of them (an error where it cannot be had).
 * @param ownServer The runtime's own HTTP server would serve beside (Deno.serve, Bun.serve): its
 * stop closes connections it accepted and has not read a request from, and idle keep-alive ones.
 * @throws {RangeError} The handover asked for is not possible here.
 */
export function decideHandover(
  caps: Capabilities,
  reusePort: boolean,
  asked: Handover | "auto",
  ownServer: boolean,
): HandoverChoice {
  const noLend = `${caps.runtime} ${caps.version} cannot hand a socket to other processes`;
  const noReuse = `SO_REUSEPORT unavailable to the workers on ${caps.runtime} ${caps.version} (${caps.os})`;
  if (asked === "lend") {
    if (!caps.processShare) throw new RangeError(`Cannot lend sockets to the workers as ${noLend}`);
    return {
      handover: "lend",
      reason: "lend was asked for: this process keeps each socket and lends it to every generation",
    };
  }
  if (asked === "beside") {
    if (!reusePort) throw new RangeError(`Cannot bind each generation beside the last as ${noReuse}`);
    const safe = caps.migrateReq
      ? ""
      : "; a reload may reset connections queued on the old sockets (tcp_migrate_req is 0)";
    return {
      handover: "beside",
      reason: `beside was asked for: each generation binds its own SO_REUSEPORT sockets${safe}`,
    };
  }
  const dropping = `${caps.runtime}'s own server closes, as it stops, connections it accepted and has not answered`;
  if (reusePort && caps.migrateReq && (!ownServer || !caps.processShare)) {
    return {
      handover: "beside",
      reason: `tcp_migrate_req is 1 (a closing SO_REUSEPORT socket hands its queue to the others)${
        ownServer ? ` and ${caps.runtime} cannot lend sockets, though ${dropping}` : ""
      }: each generation binds its own sockets beside the last`,
    };
  }
  const why = !caps.migrateReq
    ? "tcp_migrate_req is 0 (closing a SO_REUSEPORT socket resets the connections queued on it)"
    : reusePort
    ? `tcp_migrate_req is 1, but ${dropping}`
    : noReuse;
  if (caps.processShare) {
    return {
      handover: "lend",
      reason: `${why}: this process keeps each socket for the server's life and lends it to every generation`,
    };
  }
  return {
    handover: "beside",
    reason: reusePort
      ? `${why}, and ${noLend}: each generation binds its own sockets beside the last, and a reload may reset connections queued on the old ones`
      : `${noLend}, and ${noReuse}: one worker holds each socket, and a reload cannot start a new generation beside it`,
  };
}

/** Whether the kernel of `os` balances connections across SO_REUSEPORT sockets. */
export function kernelBalances(os: string): boolean {
  return os === "linux" || os === "android";
}

/**
 * Decides how `count` listeners or workers get their sockets.
 *
 * @param input The request and the capabilities.
 * @returns The strategy, the number that accept, and why.
 */
export function decideStrategy(input: StrategyInput): StrategyChoice {
  const { count, caps, across } = input;
  const who = across === "views" ? `${input.transport.toUpperCase()} listeners` : "workers";
  // One worker process asked to share gets the socket lent, where it can be: the primary keeps it
  // for the server's life (a worker started again finds it there; an inherited one stays served).
  const toProcesses = across === "processes" && caps.processShare;
  const lend = input.lend === true && toProcesses;
  if (count === 1 && (input.shared || lend) && toProcesses) {
    const why = input.shared ? "shared was asked for" : "one worker process";
    return {
      strategy: "shared",
      workers: 1,
      reason:
        `${why}: this process holds one socket (it accepts nothing itself) and lends it to it for the server's whole life`,
    };
  }
  if (count === 1) return { strategy: "single", workers: 1, reason: `one ${who.slice(0, -1)}: one socket` };
  if (lend && input.placement === "inherited" && input.perWorker === true && !input.shared) {
    return {
      strategy: "reuseport",
      workers: count,
      lent: true,
      reason:
        `inherited SO_REUSEPORT sockets in one group for each of ${count} ${who}: this process lends each group to every generation of its worker for the server's whole life, the kernel balances`,
    };
  }
  if (lend && input.placement === "inet" && input.transport === "tcp" && !input.shared && caps.lendReusePort) {
    return {
      strategy: "reuseport",
      workers: count,
      lent: true,
      reason:
        `SO_REUSEPORT on ${caps.os}: this process binds a socket for each of ${count} ${who} (it accepts nothing itself) and lends it to every generation for the server's whole life, the kernel balances`,
    };
  }
  if (input.placement === "inet" && !input.shared && !lend && caps.reusePort[input.transport]) {
    return {
      strategy: "reuseport",
      workers: count,
      reason: `SO_REUSEPORT on ${caps.os}: each of ${count} ${who} binds its own socket, the kernel balances`,
    };
  }
  const why = input.placement === "unix"
    ? "a Unix socket cannot be reused"
    : input.placement === "inherited"
    ? "an inherited socket cannot be bound again"
    : input.shared
    ? "shared was asked for"
    : kernelBalances(caps.os)
    ? lend
      ? `${caps.runtime} ${caps.version} cannot lend SO_REUSEPORT sockets`
      : `SO_REUSEPORT unavailable on ${caps.runtime} ${caps.version}${input.missing ? ` (${input.missing})` : ""}`
    : `SO_REUSEPORT does not balance load on ${caps.os}`;
  if (across === "views") {
    return { strategy: "shared", workers: count, reason: `${why}: one socket for ${count} ${who}` };
  }
  if (caps.processShare) {
    return {
      strategy: "shared",
      workers: count,
      reason: lend
        ? `${why}: this process holds one socket (it accepts nothing itself) and lends it to the ${count} worker processes for the server's whole life`
        : `${why}: one shared socket handed to ${count} worker processes`,
    };
  }
  return {
    strategy: "single",
    workers: 1,
    reason: `${why}, and ${caps.runtime} cannot hand a socket to other processes: one accepting worker`,
  };
}
