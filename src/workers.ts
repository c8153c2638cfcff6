// From a plan to listeners in worker processes: the primary prepares the plan (binds first,
// resolves the port, holds or hands off the socket), each worker listens from it.

import { adapter, type RawListener } from "./adapter.ts";
import { resolveHost } from "./bind.ts";
import { show } from "./config.ts";
import { formatHostPort, ListenError, toListenError } from "./errors.ts";
import { createListener, placeUnix, viewsOf } from "./listen.ts";
import { checkPlan, configOf, type ListenerPlan } from "./plan.ts";
import type { Addr, Listener } from "./types.ts";
import { clearStaleSocket } from "./unix.ts";

/** A plan made ready by the primary process, with the sockets it holds for the workers. */
export interface PreparedPlan {
  /** The plan to send to workers: host resolved to an IP address, port resolved, `prepared: true`. */
  readonly plan: ListenerPlan;
  /** Shared strategy: sends the listening socket to one worker process (a Node.js `ChildProcess` with IPC). */
  handOff(child: unknown): void;
  /** Drops the primary's own copy of the socket once the workers have theirs (a Unix socket file stays). */
  release(): Promise<void>;
  /** Releases, and removes the Unix socket file the primary created. Call it after the workers have stopped. */
  close(): Promise<void>;
}

/** How long a worker waits for the primary to hand it the shared socket. */
const HAND_OFF_TIMEOUT_MS = 30_000;

async function bindPlaceholder(plan: ListenerPlan, hostname: string, port: number, reusePort: boolean) {
  const address = formatHostPort(hostname, port);
  try {
    return await adapter().listenTcp({ hostname, port, backlog: plan.backlog, reusePort });
  } catch (err) {
    throw toListenError(err, address);
  }
}

/**
 * Makes a plan ready for workers, in the primary process. A TCP host is resolved and the port
 * bound here first, so every worker joins one port (with port 0, the one the OS picked) and an
 * address in use fails here, before any worker starts. With `reuseport` the primary keeps its
 * socket until {@linkcode PreparedPlan.release}, so no other process takes the port meanwhile:
 * release it once the workers listen and before clients are told the address (connections the
 * kernel gives the primary's socket in between are refused when it closes). With `shared` the
 * primary binds the one socket and hands it to each worker.
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
  let held: RawListener<Addr> | undefined;
  let removeFile = async () => {};
  let address = plan.address;
  if (address.transport === "tcp") {
    const hostname = await resolveHost(a, address.hostname);
    const raw = await bindPlaceholder(plan, hostname, address.port, plan.strategy === "reuseport");
    address = { transport: "tcp", hostname, port: raw.addr.port };
    if (plan.strategy === "single") await raw.close();
    else held = raw;
  } else if (plan.strategy === "shared") {
    const placed = await placeUnix(address.path, plan.backlog, plan.udsMode);
    held = placed.raw;
    removeFile = placed.remove;
  } else {
    await clearStaleSocket(a.fs, a.fs.resolve(address.path));
  }
  const ready: ListenerPlan = { ...plan, address, prepared: true };
  let released: Promise<void> | undefined;
  const release = () => released ??= held?.close() ?? Promise.resolve();
  return {
    plan: ready,
    handOff(child) {
      if (plan.strategy !== "shared" || !held || !a.handOff) {
        throw new TypeError(`Cannot hand off a socket as the plan's strategy is ${show(plan.strategy)}, not "shared"`);
      }
      a.handOff.send(child, held.native, held.addr);
    },
    release,
    async close() {
      await release();
      await removeFile();
    },
  };
}

/**
 * Returns worker `index`'s listener for a prepared plan, in the worker. With `reuseport` the
 * worker binds its own socket on the plan's port; with `shared` it receives the primary's socket
 * (see {@linkcode PreparedPlan.handOff}); with `single` worker 0 binds the address.
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
  if (plan.strategy === "single") return await createListener(configOf(plan));
  if (plan.strategy === "shared") {
    const where = address.transport === "unix" ? address.path : formatHostPort(address.hostname, address.port);
    if (!a.handOff) {
      throw new ListenError(`Cannot receive a shared socket for ${where} as ${a.runtime} cannot pass sockets`, {
        code: "ENOTSUP",
        address: where,
      });
    }
    const raw = await a.handOff.receive(HAND_OFF_TIMEOUT_MS).catch((err) => {
      throw new ListenError(`Cannot listen on ${where}: ${(err as Error).message}`, {
        code: "ETIMEDOUT",
        address: where,
        cause: err,
      });
    });
    return viewsOf([raw], 1)[0]!;
  }
  if (address.transport !== "tcp") throw new TypeError("A reuseport plan must have a TCP address");
  const hostname = await resolveHost(a, address.hostname);
  return viewsOf([await bindPlaceholder(plan, hostname, address.port, true)], 1)[0]!;
}

function checkIndex(plan: ListenerPlan, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= plan.workers) {
    const why = plan.workers < plan.requested ? ` (${plan.reason})` : "";
    throw new RangeError(
      `Cannot listen from plan as 'index' must be an integer from 0 to ${plan.workers - 1}${why}: current value is ${
        show(index)
      }`,
    );
  }
}

/** Options for `Deno.serve`, `Bun.serve` or Node's `server.listen`, from a plan. */
export type ServeOptions =
  | { hostname: string; port: number; reusePort?: boolean }
  | { path: string }
  | { unix: string };

/**
 * Derives the options of the runtime's own HTTP server (`Deno.serve`, `Bun.serve`) for worker
 * `index` of a prepared plan, with the same strategy decisions and errors as the listeners:
 * `{ hostname, port, reusePort }` for TCP, `{ path }` (Deno, Node) or `{ unix }` (Bun) for a
 * Unix socket, whose stale file is removed first. A `shared` plan has no such options: use
 * {@linkcode listenFromPlan} and hand the listener's `native` to Node's `http.Server`.
 *
 * @param plan The prepared plan.
 * @param index This worker's index.
 * @returns Options to spread into the runtime's serve call.
 * @throws {RangeError} `index` is not a worker of this plan.
 * @throws {TypeError} The plan is `shared`.
 * @throws {ListenError} A live server or a non-socket file is at the Unix socket path.
 * @example
 * ```ts ignore
 * const options = await serveOptions(plan, 0);
 * Deno.serve({ ...options, onListen() {} }, () => new Response("ok"));
 * ```
 */
export async function serveOptions(plan: ListenerPlan, index: number): Promise<ServeOptions> {
  checkPlan(plan);
  checkIndex(plan, index);
  const a = adapter();
  const address = plan.address;
  if (plan.strategy === "shared") {
    throw new TypeError(
      "Cannot derive serve options from a shared plan: use listenFromPlan() and hand its native over",
    );
  }
  if (address.transport === "unix") {
    await clearStaleSocket(a.fs, a.fs.resolve(address.path));
    return a.serveUnixKey === "unix" ? { unix: address.path } : { path: address.path };
  }
  const hostname = await resolveHost(a, address.hostname);
  return plan.strategy === "reuseport"
    ? { hostname, port: address.port, reusePort: true }
    : { hostname, port: address.port };
}
