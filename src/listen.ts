// createListener(s) and cleanupUnixSocket: TCP and Unix stream listeners, one or many, on
// addresses, inherited descriptors or systemd's sockets (through the bind pipeline, _pipeline.ts).

import { adapter } from "./_adapter.ts";
import { toConfig } from "./_address.ts";
import { checkCount, checkFlags, normalizeConfig } from "./_config.ts";
import { toListenError } from "./_errors.ts";
import { bindStreams } from "./_pipeline.ts";
import { removeSocketFile } from "./_unix.ts";
import type { Listener, ServerConfig } from "./types.ts";

/** Options of {@linkcode createListeners}. */
export interface CreateListenersOptions {
  /**
   * One socket handed out as `count` views, even where SO_REUSEPORT would work.
   * @default {false}
   */
  shared?: boolean;
  /**
   * Join SO_REUSEPORT sockets that already listen on the address (a new generation of a server
   * binding beside the old one) instead of failing with EADDRINUSE. Only for a group of your
   * own: the kernel then splits connections between the old sockets and the new.
   * @default {false}
   */
  join?: boolean;
}

/**
 * Binds one listener: TCP on `host:port` (on every address a host name resolves to), a Unix
 * socket at `uds`, an inherited descriptor (`fd`) or systemd's sockets (`systemd`). An address
 * string (see {@linkcode parseAddress}) may stand for the config.
 *
 * @param config Where to bind; see {@linkcode ServerConfig} for defaults.
 * @returns The listener, ready to accept.
 * @throws {TypeError} A config field has the wrong type.
 * @throws {RangeError} A config field is out of range, or the address string is not one.
 * @throws {ListenError} The OS refused: address in use, permission, unknown host, ...
 * @example
 * ```ts
 * import { createListener } from "../mod.ts";
 * await using listener = await createListener("127.0.0.1:0");
 * console.assert(listener.addr.transport === "tcp" && listener.addr.port > 0);
 * ```
 */
export async function createListener(config: ServerConfig | string): Promise<Listener> {
  return (await bindStreams(adapter(), config, 1, { shared: false, join: false }))[0]!;
}

/**
 * Binds `count` listeners for `count` workers. Where the kernel balances SO_REUSEPORT sockets
 * (Linux, with runtime support), each gets its own socket on the same port (port 0: the first
 * bind picks it). Otherwise, or with `shared`, or for a Unix socket or inherited descriptor, one
 * socket is handed out as `count` views: each view may be closed alone, and the socket closes
 * with the last.
 *
 * @param config Where to bind, or an address string.
 * @param count How many listeners, from 1.
 * @param options `shared: true` forces one shared socket; `join: true` joins a reuseport group
 * already on the address.
 * @returns `count` listeners on one address.
 * @throws {RangeError} `count` is not a positive integer, or a config field is out of range.
 * @throws {ListenError} The OS refused; every socket already bound has been closed. EADDRINUSE
 * when anyone holds the address, with or without SO_REUSEPORT, unless `join` is set.
 * @example
 * ```ts
 * import { createListeners } from "../mod.ts";
 * const listeners = await createListeners({ port: 0 }, 2);
 * console.assert(listeners.length === 2);
 * await Promise.all(listeners.map((l) => l.close()));
 * ```
 */
export async function createListeners(
  config: ServerConfig | string,
  count: number,
  options?: CreateListenersOptions,
): Promise<Listener[]> {
  checkCount(count);
  return await bindStreams(adapter(), config, count, checkFlags(options, ["shared", "join"]));
}

/**
 * Removes a leftover Unix socket file at `config.uds` if it is stale (nobody listens on it).
 * A no-op without `uds`, without a file, or for an abstract socket; never removes a live socket
 * or anything that is not a socket.
 *
 * @param config The config (or address string) whose `uds` to clean up.
 * @throws {TypeError} `uds` is not a string.
 * @throws {ListenError} The file could not be checked or removed, or something swapped in while
 * it was checked could not be put back (the message says where it was kept).
 * @example
 * ```ts
 * import { cleanupUnixSocket } from "../mod.ts";
 * await cleanupUnixSocket({ uds: "/tmp/polybind-example.sock" });
 * ```
 */
export async function cleanupUnixSocket(config: ServerConfig | string): Promise<void> {
  const a = adapter();
  const c = normalizeConfig(toConfig(config), a.os);
  if (c.kind !== "unix" || c.abstract) return;
  const fs = a.platform.fs;
  const path = fs.resolve(c.path);
  try {
    const info = await fs.lstat(path);
    if (info?.kind !== "socket" || await fs.knock(path) === "live") return;
    // Throws, never swallowed, if something else was swapped in meanwhile (it is kept aside).
    await removeSocketFile(fs, path, info);
  } catch (err) {
    throw toListenError(err, path);
  }
}
