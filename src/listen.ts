// createListener(s) and cleanupUnixSocket: TCP and Unix stream listeners, one or many.

import { adapter, type RawListener } from "./adapter.ts";
import { capabilities } from "./capabilities.ts";
import { checkCount, maxSocketPath, normalizeConfig } from "./config.ts";
import { closedError, formatHostPort } from "./errors.ts";
import { bindEach, resolveHost } from "./bind.ts";
import { shareSource } from "./shared.ts";
import { chooseStrategy } from "./strategy.ts";
import { clearStaleSocket, placeSocket, removeSocketFile } from "./unix.ts";
import type { Addr, Conn, Listener, ServerConfig } from "./types.ts";
import { wrapListener } from "./wrap.ts";

/** Options of {@linkcode createListeners}. */
export interface CreateListenersOptions {
  /**
   * One socket handed out as `count` views, even where SO_REUSEPORT would work.
   * @default {false}
   */
  shared?: boolean;
}

function describe(addr: Addr): string {
  return addr.transport === "unix" ? addr.path : formatHostPort(addr.hostname, addr.port);
}

/** Hands out one raw listener as `count` Listener views (internal). */
export function viewsOf(raw: RawListener<Addr>, count: number): Listener[] {
  const address = describe(raw.addr);
  const views = shareSource<Conn>(
    { take: () => raw.accept(), close: () => raw.close() },
    count,
    () => closedError(address),
    (conn) => conn.close(),
  );
  return views.map((view) => wrapListener(view, raw.addr, raw.native));
}

/** A Unix socket bound and linked into place, and the removal of its file (internal). */
export async function placeUnix(
  path: string,
  backlog: number,
  mode: number,
): Promise<{ raw: RawListener<Addr>; remove(): Promise<void> }> {
  const a = adapter();
  const absolute = a.fs.resolve(path);
  const placed = await placeSocket(
    a.fs,
    absolute,
    mode,
    maxSocketPath(a.os),
    (at) => a.listenUnix({ path: at, backlog }),
    (l) => l.close(),
  );
  const raw = placed.listener;
  return {
    raw: {
      addr: { transport: "unix", path },
      native: raw.native,
      accept: () => raw.accept(),
      close: () => raw.close(),
    },
    remove: () => removeSocketFile(a.fs, absolute, placed.info).then(() => {}, () => {}),
  };
}

async function bindUnix(path: string, backlog: number, mode: number): Promise<RawListener<Addr>> {
  const { raw, remove } = await placeUnix(path, backlog, mode);
  return {
    ...raw,
    close: async () => {
      await raw.close();
      await remove();
    },
  };
}

async function bindStream(config: ServerConfig, count: number, shared: boolean): Promise<Listener[]> {
  const a = adapter();
  const c = normalizeConfig(config, a.os);
  if (c.kind === "unix") return viewsOf(await bindUnix(c.path, c.backlog, c.mode), count);
  const host = await resolveHost(a, c.host);
  const { strategy } = chooseStrategy({
    count,
    shared,
    unix: false,
    transport: "tcp",
    reusePort: count > 1 && !shared && capabilities().reusePort.tcp,
    os: a.os,
    missing: a.missing("reusePort.tcp"),
  });
  const sockets = strategy === "reuseport" ? count : 1;
  const raws = await bindEach(
    sockets,
    host,
    c.port,
    (port) => a.listenTcp({ hostname: host, port, backlog: c.backlog, reusePort: strategy === "reuseport" }),
    (raw) => raw.addr.port,
  );
  return strategy === "reuseport" ? raws.flatMap((raw) => viewsOf(raw, 1)) : viewsOf(raws[0]!, count);
}

/**
 * Binds one listener: TCP on `host:port`, or a Unix socket at `uds`.
 *
 * @param config Where to bind; see {@linkcode ServerConfig} for defaults.
 * @returns The listener, ready to accept.
 * @throws {TypeError} A config field has the wrong type.
 * @throws {RangeError} A config field is out of range.
 * @throws {ListenError} The OS refused: address in use, permission, unknown host, ...
 * @example
 * ```ts
 * import { createListener } from "../mod.ts";
 * await using listener = await createListener({ host: "127.0.0.1", port: 0 });
 * console.assert(listener.addr.transport === "tcp" && listener.addr.port > 0);
 * ```
 */
export async function createListener(config: ServerConfig): Promise<Listener> {
  return (await bindStream(config, 1, false))[0]!;
}

/**
 * Binds `count` listeners for `count` workers. Where the kernel balances SO_REUSEPORT sockets
 * (Linux, with runtime support), each gets its own socket on the same port (port 0: the first
 * bind picks it). Otherwise, or with `shared`, or for a Unix socket, one socket is handed out as
 * `count` views: each view may be closed alone, and the socket closes with the last.
 *
 * @param config Where to bind.
 * @param count How many listeners, from 1.
 * @param options `shared: true` forces one shared socket.
 * @returns `count` listeners on one address.
 * @throws {RangeError} `count` is not a positive integer, or a config field is out of range.
 * @throws {ListenError} The OS refused; every socket already bound has been closed.
 * @example
 * ```ts
 * import { createListeners } from "../mod.ts";
 * const listeners = await createListeners({ port: 0 }, 2);
 * console.assert(listeners.length === 2);
 * await Promise.all(listeners.map((l) => l.close()));
 * ```
 */
export async function createListeners(
  config: ServerConfig,
  count: number,
  options: CreateListenersOptions = {},
): Promise<Listener[]> {
  checkCount(count);
  return await bindStream(config, count, options.shared === true);
}

/**
 * Removes a leftover Unix socket file at `config.uds` if it is stale (nobody listens on it).
 * A no-op without `uds` or without a file; never removes a live socket or anything that is not
 * a socket.
 *
 * @param config The config whose `uds` to clean up.
 * @throws {TypeError} `uds` is not a string.
 * @example
 * ```ts
 * import { cleanupUnixSocket } from "../mod.ts";
 * await cleanupUnixSocket({ uds: "/tmp/polybind-example.sock" });
 * ```
 */
export async function cleanupUnixSocket(config: ServerConfig): Promise<void> {
  const a = adapter();
  const c = normalizeConfig(config, a.os);
  if (c.kind !== "unix") return;
  await clearStaleSocket(a.fs, a.fs.resolve(c.path)).catch((err: { code?: string }) => {
    if (err.code !== "EADDRINUSE" && err.code !== "EEXIST") throw err;
  });
}
