// serveTargets: where the runtime's own HTTP server (Deno.serve, Bun.serve, Node's
// server.listen) listens for one worker of a plan, with the plan's decisions kept: every
// address answers, and a Unix socket gets its exact mode before anyone can connect.

import { adapter } from "./_adapter.ts";
import { resolveHosts } from "./_bind.ts";
import { maxSocketPath } from "./_config.ts";
import { checkPlan, type ListenerPlan } from "./plan.ts";
import { preparePlace, removeSocketFile } from "./_unix.ts";
import { checkIndex, isLent } from "./_plan.ts";

/**
 * Options for the runtime's own server, named as that server names them: `{ hostname, port,
 * reusePort }` or `{ path }` for `Deno.serve`; `{ hostname, port, reusePort }` or `{ unix }` for
 * `Bun.serve`; `{ host, port, reusePort }` or `{ path }` for Node's `server.listen`.
 */
export type ServeOptions =
  | { hostname: string; port: number; reusePort?: boolean }
  | { host: string; port: number; reusePort?: boolean }
  | { path: string }
  | { unix: string };

/** One address of a worker's server: its options, and the steps around the server's life. */
export interface ServeTarget {
  /** Spread into `Deno.serve`, `Bun.serve` or `server.listen`. */
  readonly options: ServeOptions;
  /**
   * Call once the server listens (after `Deno.serve` or `Bun.serve` returns, in the callback
   * of `server.listen`): a Unix socket, bound in a private folder, gets the plan's `udsMode`
   * and is linked to its path. Nothing to do for TCP.
   *
   * @throws {ListenError} The socket is not there, or something took its path meanwhile.
   */
  listening(): Promise<void>;
  /**
   * Call once the server has stopped: removes the Unix socket file, if it is still this one.
   * Resolves at once for TCP. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * The addresses where worker `index` of a prepared plan serves with the runtime's own HTTP
 * server, one target per address: a host name that resolves to several addresses (`localhost`
 * is 127.0.0.1 and ::1) gives a target for each, so start one server per target. With the same
 * strategy decisions and errors as the listeners. A plan of lent sockets (`shared`, or `lent`)
 * or inherited ones has no such options: use {@linkcode listenFromPlan} and
 * {@linkcode handOffConnections}.
 *
 * @param plan The prepared plan.
 * @param index This worker's index.
 * @returns One target per address, in the plan's order.
 * @throws {RangeError} `index` is not a worker of this plan.
 * @throws {TypeError} The plan's sockets are lent or inherited, or it reads the PROXY protocol.
 * @throws {ListenError} A live server or a non-socket file is at the Unix socket path.
 * @example
 * ```ts ignore
 * for (const target of await serveTargets(plan, 0)) {
 *   const server = Deno.serve({ ...target.options, onListen() {} }, () => new Response("ok"));
 *   await target.listening();
 *   // ... at the end: await server.shutdown(); await target.close();
 * }
 * ```
 */
export async function serveTargets(plan: ListenerPlan, index: number): Promise<ServeTarget[]> {
  checkPlan(plan);
  checkIndex(plan, index);
  const a = adapter();
  const address = plan.address;
  if (isLent(plan) || address.transport === "inherited") {
    throw new TypeError(
      "Cannot derive serve options from a plan of lent or inherited sockets: use listenFromPlan() and handOffConnections()",
    );
  }
  if (plan.proxyProtocol !== undefined) {
    // Deno.serve, Bun.serve and server.listen read their sockets themselves: none reads the header first.
    throw new TypeError(
      "Cannot derive serve options for a plan with 'proxyProtocol' as the runtime's server reads the socket itself: use listenFromPlan() and handOffConnections()",
    );
  }
  const keys = a.serveKeys;
  if (address.transport === "unix") {
    if (address.path.startsWith("\0")) return [tcpLike({ [keys.path]: address.path } as ServeOptions)];
    const fs = a.platform.fs;
    const path = fs.resolve(address.path);
    const place = await preparePlace(fs, path, maxSocketPath(a.os));
    let placed: Promise<void> | undefined;
    let info: Awaited<ReturnType<typeof place.finish>> | undefined;
    let closed: Promise<void> | undefined;
    return [{
      options: { [keys.path]: place.at } as ServeOptions,
      listening: () => placed ??= place.finish(plan.udsMode).then((i) => void (info = i)),
      close: () =>
        closed ??= (async () => {
          await place.abort();
          if (info !== undefined) await removeSocketFile(fs, path, info);
        })(),
    }];
  }
  const ips = plan.resolved ?? (await resolveHosts(a, address.hostname)).map((h) => h.address);
  const reuse = plan.strategy === "reuseport" ? { reusePort: true } : {};
  return ips.map((ip) => tcpLike({ [keys.host]: ip, port: address.port, ...reuse } as ServeOptions));
}

function tcpLike(options: ServeOptions): ServeTarget {
  return { options, listening: () => Promise.resolve(), close: () => Promise.resolve() };
}
