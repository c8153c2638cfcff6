// From a plan to listeners in worker processes: the primary prepares the plan (binds first,
// resolves the port, holds the socket or lends it to each worker), each worker listens from it.

import { type Adapter, adapter, type RawListener, type ShareableSocket, type SocketShare } from "./_adapter.ts";
import { toConfig } from "./_address.ts";
import { type BindHost, bindOnOnePort, hostSteps, resolveHosts } from "./_bind.ts";
import { maxSocketPath, normalizeConfig, show } from "./_config.ts";
import { errorCode, toListenError } from "./_errors.ts";
import { formatHostPort } from "./_address.ts";
import { holderOf } from "./_claim.ts";
import { bindGroups, inheritedFds, TCP } from "./_pipeline.ts";
import { withProxyProtocol } from "./_proxy_listener.ts";
import { checkProxyProtocol } from "./_proxy_options.ts";
import { clearStaleSocket, placeSocket, removeSocketFile } from "./_unix.ts";
import { listenerViews, named } from "./_views.ts";
import { ListenError } from "./errors.ts";
import { createListener } from "./listen.ts";
import { checkIndex, configOf, describePlan, isLent } from "./_plan.ts";
import { checkPlan, type ListenerPlan } from "./plan.ts";
import type { Addr, Listener, TcpAddr } from "./types.ts";

/** A plan made ready by the primary process, with the sockets it holds for the workers. */
export interface PreparedPlan {
  /** The plan to send to workers: host resolved to an IP address, port resolved, `prepared: true`. */
  readonly plan: ListenerPlan;
  /**
   * Lent plans (shared, or reuseport with `lent`): lends the sockets of worker `index` to one
   * worker process (a `ChildProcess` with IPC, on Node.js and Deno). On Bun a worker process
   * inherits the sockets instead: start it with {@linkcode PreparedPlan.descriptors} (this call
   * does nothing there).
   *
   * @param child The worker process.
   * @param index Its worker index: which sockets of a `lent` reuseport plan (each worker has its
   * own); a shared plan lends every worker the same. Default: all of them.
   */
  shareWith(child: unknown, index?: number): void;
  /**
   * Lent plans: the descriptors of the sockets this process holds for worker `index` (default:
   * for all workers), and the key of each. A child process started with them (as extra stdio
   * entries) and told where they are in `POLYBIND_FDS` (JSON: key to its descriptor number
   * there) listens on them in {@linkcode listenFromPlan}: how Bun lends sockets, and how a new
   * primary takes them over. Empty for other strategies, or where the runtime does not tell
   * descriptors.
   */
  descriptors(index?: number): { key: string; fd: number }[];
  /**
   * Drops the primary's own copy of a shared socket (a Unix socket file stays): once the workers
   * have theirs, or at the server's stop. A reuseport plan (unless `lent`) or single plan holds nothing.
   */
  release(): Promise<void>;
  /** Releases, and removes the Unix socket file the primary created. Call it after the workers have stopped. */
  close(): Promise<void>;
}

/**
 * How long a worker waits for the primary to lend it the shared socket: the primary answers in
 * milliseconds once it has called `shareWith(child)`; a primary that never calls it is named in
 * the worker's error (ETIMEDOUT) well before a health check would give up.
 */
export const SHARE_TIMEOUT_MS = 10_000;

/** Where a process started with lent sockets finds them: JSON, each socket's key to its descriptor. */
export const FDS_VARIABLE = "POLYBIND_FDS";

/**
 * The lent sockets a process was started with: FDS_VARIABLE's value read as each socket's key to
 * its descriptor.
 *
 * @param value The variable's value, if set.
 * @returns The descriptors by key.
 * @example
 * ```ts
 * import { lentFds } from "./workers.ts";
 * console.assert(lentFds('{"k#0":3}')["k#0"] === 3 && Object.keys(lentFds(undefined)).length === 0);
 * ```
 */
export function lentFds(value: string | undefined): Record<string, number> {
  return JSON.parse(value ?? "{}") as Record<string, number>;
}

/**
 * The error of a worker that could not listen on a plan's sockets: the OS's or the primary's
 * reason, with its code.
 *
 * @param plan The plan.
 * @param err Why.
 * @returns The ListenError to throw.
 * @example
 * ```ts ignore
 * throw cannotListen(plan, Object.assign(new Error("no socket"), { code: "EBADF" }));
 * ```
 */
export function cannotListen(plan: ListenerPlan, err: unknown): ListenError {
  const where = describePlan(plan.address);
  return new ListenError(`Cannot listen on ${where}: ${(err as Error).message}`, {
    code: errorCode(err),
    address: where,
    cause: err,
  });
}

/**
 * Binds one TCP socket on each of `hosts`, all on one port (the first picks it when 0). With
 * reusePort it joins the sockets already there when `join` is set, else it claims the address.
 */
async function bindHosts(
  a: Adapter,
  plan: ListenerPlan,
  hosts: BindHost[],
  port: number,
  reusePort: boolean,
  join: boolean,
): Promise<RawListener<TcpAddr>[]> {
  const [groups] = await bindGroups(a, [TCP], { hosts, port, perHost: 1, reusePort, join, backlog: plan.backlog });
  return groups!.map((g) => g[0] as RawListener<TcpAddr>);
}

/**
 * Makes a plan ready for workers, in the primary process. A TCP host is resolved and the port
 * checked here first, so every worker joins one port (with port 0, one the OS picked) and an
 * address in use fails here, before any worker starts. With `reuseport` the primary keeps no
 * socket (one that listened would take connections and reset them when it closed): it checks
 * that nobody holds the address, and the workers bind it; a `lent` reuseport plan is the same
 * check, then the primary binds a SO_REUSEPORT socket for each worker, without listening, and
 * lends each to its worker as below. With `shared` the primary binds the
 * one socket without listening (so it accepts nothing itself) and lends it to each worker for
 * as long as the plan is open: a worker that ends never takes the socket with it.
 *
 * @param plan A plan from {@linkcode planListeners}.
 * @returns The prepared plan and the primary's handles on it.
 * @throws {ListenError} The OS refused the address.
 * @example
 * ```ts
 * import { planListeners, preparePlan } from "../mod.ts";
 * const prepared = await preparePlan(planListeners({ port: 0 }, 2));
 * console.assert(prepared.plan.address.transport === "tcp" && prepared.plan.address.port > 0);
 * await prepared.close();
 * ```
 */
export async function preparePlan(plan: ListenerPlan): Promise<PreparedPlan> {
  checkPlan(plan);
  const a = adapter();
  const shared = isLent(plan);
  const share = a.share;
  if (shared && !share) {
    throw new TypeError(`Cannot prepare a lent plan as ${a.runtime} cannot hand sockets to other processes`);
  }
  // Inherited sockets in groups (perWorker) have SO_REUSEPORT already: only sockets bound here need it.
  if (plan.lent && plan.address.transport === "tcp" && !share!.reusePort) {
    throw new TypeError(`Cannot prepare a lent reuseport plan as ${a.runtime} cannot lend SO_REUSEPORT sockets`);
  }
  let held: Held[] = [];
  let removeFile = async () => {};
  let address = plan.address;
  let resolved: string[] | undefined;
  if (address.transport === "tcp") {
    const hosts = await resolveHosts(a, address.hostname);
    if (plan.strategy === "reuseport") {
      const claimed = await claimReusePort(a, plan, hosts, address.port);
      resolved = claimed.hosts;
      address = { transport: "tcp", hostname: resolved[0]!, port: claimed.port };
      if (plan.lent) held = await bindLent(share!, plan.workers, resolved, claimed.port);
    } else {
      const sockets = shared
        ? await bindShareable(share!, hosts, address.port)
        : await bindHosts(a, plan, hosts, address.port, false, false);
      resolved = sockets.map((s) => (s.addr as TcpAddr).hostname);
      address = { transport: "tcp", hostname: resolved[0]!, port: (sockets[0]!.addr as TcpAddr).port };
      if (plan.strategy === "single") await Promise.all(sockets.map((s) => s.close()));
      else held = sockets;
    }
  } else if (address.transport === "inherited") {
    if (!shared) {
      throw new TypeError(
        `Cannot prepare a ${plan.strategy} plan of inherited sockets: call createListener(${
          JSON.stringify(address.spec)
        }) in the process that inherited them`,
      );
    }
    const fds = inheritedFds(a, normalizeConfig(toConfig(address.spec), a.os));
    if (plan.lent && fds.length % plan.workers !== 0) {
      throw new RangeError(
        `Cannot prepare a perWorker plan as the sockets of ${address.spec} must make one equal group for each of ${plan.workers} workers: current value is ${fds.length} sockets`,
      );
    }
    for (const fd of fds) held.push(await share!.bind({ fd }));
    if (plan.lent) await checkGroups(held, plan.workers, address.spec);
  } else if (shared) {
    const fs = a.platform.fs;
    const path = fs.resolve(address.path);
    const placed = await placeSocket(
      fs,
      path,
      plan.udsMode,
      maxSocketPath(a.os),
      (at) => share!.bind({ path: at }),
      (s) => s.close(),
    );
    held = [{ ...placed.listener, addr: { transport: "unix", path: address.path } }];
    removeFile = () => removeSocketFile(fs, path, placed.info).then(() => {});
  } else {
    await clearStaleSocket(a.platform.fs, a.platform.fs.resolve(address.path));
  }
  const ready: ListenerPlan = {
    ...plan,
    address,
    prepared: true,
    // A lent reuseport plan: each worker's own group (a socket for each host, or its inherited share).
    sockets: plan.lent ? resolved?.length ?? held.length / plan.workers : Math.max(held.length, 1),
    ...(resolved ? { resolved } : {}),
  };
  let released: Promise<void> | undefined;
  const release = () => released ??= Promise.all(held.map((s) => s.close())).then(() => {});
  return {
    plan: ready,
    shareWith(child, index) {
      if (!shared) {
        throw new TypeError(
          `Cannot share a socket as the plan must be "shared" or a lent "reuseport": current value is ${
            show(plan.strategy)
          }`,
        );
      }
      for (const i of slotIndexes(ready, held.length, index)) {
        share!.offer?.(child, shareKey(ready, i), held[i] as ShareableSocket, plan.backlog);
      }
    },
    descriptors(index) {
      return slotIndexes(ready, held.length, index).flatMap((i) => {
        const fd = held[i]!.fd;
        return fd === undefined ? [] : [{ key: shareKey(ready, i), fd }];
      });
    },
    release,
    async close() {
      await release();
      await removeFile();
    },
  };
}

/**
 * Claims a TCP address for a reuseport group without keeping a socket that listens: the hosts
 * present and, with port 0, a free port, come from plain binds that close at once (nobody knows
 * that port yet); a given port is checked in the kernel's socket table (Linux), or with a plain
 * bind where there is none. `join` skips the check: the group joins sockets already there.
 */
async function claimReusePort(
  a: Adapter,
  plan: ListenerPlan,
  hosts: BindHost[],
  port: number,
): Promise<{ hosts: string[]; port: number }> {
  const free = await bindHosts(a, plan, hosts, 0, false, false);
  await Promise.all(free.map((s) => s.close()));
  const present = free.map((s) => s.addr.hostname);
  if (port === 0) return { hosts: present, port: free[0]!.addr.port };
  if (plan.join === true) return { hosts: present, port };
  for (const host of present) {
    const holder = await holderOf(a.platform, host, port);
    if (holder === undefined) {
      const plain = await bindHosts(a, plan, [{ address: host, optional: false }], port, false, false);
      await Promise.all(plain.map((s) => s.close()));
    } else if (holder !== null) {
      const taken = Object.assign(new Error(`${formatHostPort(holder, port)} is bound`), { code: "EADDRINUSE" });
      throw toListenError(taken, formatHostPort(host, port));
    }
  }
  return { hosts: present, port };
}

/** What the primary holds for its workers: shareable sockets. */
type Held = { readonly addr: Addr; readonly native: unknown; readonly fd?: number; close(): Promise<void> };

/** Binds a shareable (not listening) socket on each of `hosts`, all on one port. */
async function bindShareable(share: SocketShare, hosts: BindHost[], port: number): Promise<ShareableSocket[]> {
  const steps = hostSteps(
    hosts,
    1,
    (hostname, at) => share.bind({ hostname, port: at }),
    (s) => (s.addr as TcpAddr).port,
  );
  return (await bindOnOnePort(port, steps)).filter((g) => g.length > 0).map((g) => g[0] as ShareableSocket);
}

/**
 * Binds a SO_REUSEPORT socket (not listening) on each of `hosts` for each of `workers`, all on
 * `port`: worker w's are the `hosts.length` from w × hosts.length. Closes them all if one fails.
 */
async function bindLent(share: SocketShare, workers: number, hosts: readonly string[], port: number): Promise<Held[]> {
  const bound: ShareableSocket[] = [];
  try {
    for (let w = 0; w < workers; w++) {
      for (const hostname of hosts) bound.push(await share.bind({ hostname, port, reusePort: true }));
    }
    return bound;
  } catch (err) {
    await Promise.all(bound.map((s) => s.close()));
    throw toListenError(err, formatHostPort(hosts[0]!, port));
  }
}

/**
 * Checks that inherited sockets in `workers` groups (perWorker) are the same addresses in each
 * group, in the same order, as a predecessor's lent reuseport plan hands them; closes them all
 * where they are not.
 */
async function checkGroups(held: readonly Held[], workers: number, spec: string): Promise<void> {
  const size = held.length / workers;
  const where = (s: Held) => JSON.stringify(s.addr);
  const odd = held.findIndex((s, i) => where(s) !== where(held[i % size]!));
  if (odd < 0) return;
  await Promise.all(held.map((s) => s.close()));
  throw new RangeError(
    `Cannot prepare a perWorker plan as the sockets of ${spec} must be the same addresses for each of ${workers} workers: current value is ${
      where(held[odd]!)
    } for worker ${Math.floor(odd / size)} where worker 0 has ${where(held[odd % size]!)}`,
  );
}

/**
 * The indexes of worker `index`'s sockets among the `count` of a plan: its own for a `lent`
 * reuseport plan, else (or where `index` is undefined) all of them.
 */
function slotIndexes(plan: ListenerPlan, count: number, index: number | undefined): number[] {
  if (!plan.lent || index === undefined) return Array.from({ length: count }, (_, i) => i);
  return Array.from({ length: plan.sockets }, (_, i) => index * plan.sockets + i);
}

/** The key a worker asks the primary for socket `i` of `plan` by. */
export function shareKey(plan: ListenerPlan, i: number): string {
  return `${JSON.stringify(plan.address)}#${i}`;
}

/** The keys of the sockets lent to worker `index` for `plan`: its own for a `lent` reuseport plan, else all. */
export function lentKeys(plan: ListenerPlan, index: number): string[] {
  return slotIndexes(plan, plan.sockets, index).map((i) => shareKey(plan, i));
}

/**
 * Returns worker `index`'s listener for a prepared plan, in the worker. With `reuseport` the
 * worker binds its own socket on the plan's port; with `shared`, or a `lent` reuseport plan, it
 * receives the primary's socket, or its own of the primary's (see
 * {@linkcode PreparedPlan.shareWith}); with `single` worker 0 binds the address.
 *
 * @param plan The prepared plan, as the primary sent it.
 * @param index This worker's index, from 0 to `plan.workers - 1`.
 * @returns The listener.
 * @throws {RangeError} `index` is not a worker of this plan.
 * @throws {ListenError} The OS refused, or no socket arrived from the primary.
 * @example
 * ```ts ignore
 * import { checkPlan, listenFromPlan } from "polybind";
 * const plan = checkPlan(JSON.parse(process.env.POLYBIND_PLAN!));
 * const listener = await listenFromPlan(plan, Number(process.env.POLYBIND_WORKER));
 * ```
 */
export async function listenFromPlan(plan: ListenerPlan, index: number): Promise<Listener> {
  checkPlan(plan);
  checkIndex(plan, index);
  const a = adapter();
  const address = plan.address;
  if (plan.strategy === "single" && address.transport !== "tcp") return await createListener(configOf(plan));
  if (isLent(plan)) {
    const where = describePlan(plan.address);
    const share = a.share;
    if (!share) {
      throw new ListenError(`Cannot receive a shared socket for ${where} as ${a.runtime} cannot pass sockets`, {
        code: "ENOTSUP",
        address: where,
      });
    }
    const inherited = lentFds(a.platform.env(FDS_VARIABLE));
    const receive = (key: string): Promise<RawListener> => {
      const fd = inherited[key];
      if (fd !== undefined) return a.listenFd({ fd, backlog: plan.backlog }).then((raw) => named(raw, plan.address));
      if (share.receive) return share.receive(key, SHARE_TIMEOUT_MS);
      return Promise.reject(
        Object.assign(new Error(`this process was not started with the socket's descriptor (${FDS_VARIABLE})`), {
          code: "EBADF",
        }),
      );
    };
    const raws = await Promise.all(lentKeys(plan, index).map(receive))
      .catch((err) => {
        throw cannotListen(plan, err);
      });
    return withPlanProxy(plan, listenerViews(raws, 1)[0]!);
  }
  if (address.transport !== "tcp") throw new TypeError("A reuseport plan must have a TCP address");
  // reuseport, or single: bind every address the host resolved to.
  const hosts = plan.resolved?.map((ip) => ({ address: ip, optional: false })) ??
    await resolveHosts(a, address.hostname);
  // A worker joins the primary's reuseport sockets: the primary claimed the address.
  const raws = await bindHosts(a, plan, hosts, address.port, plan.strategy === "reuseport", true);
  return withPlanProxy(plan, listenerViews(raws, 1)[0]!);
}

/** The listener reading a PROXY protocol header first, where the plan asks for it. */
function withPlanProxy(plan: ListenerPlan, listener: Listener): Listener {
  const proxy = checkProxyProtocol(plan.proxyProtocol);
  return proxy === undefined ? listener : withProxyProtocol(listener, proxy);
}
