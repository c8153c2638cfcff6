// createListener(s) and cleanupUnixSocket: TCP and Unix stream listeners, one or many, on
// addresses, inherited descriptors or systemd's sockets.

import { adapter, type RawListener } from "./_adapter.ts";
import { formatAddress, toConfig } from "./address.ts";
import {
  type BindHost,
  bindOnOnePort,
  claimWith,
  type Closable,
  hostSteps,
  type PortStep,
  resolveHosts,
  withRetry,
} from "./_bind.ts";
import { probeCapabilities } from "./capabilities.ts";
import { checkCount, checkFlags, maxSocketPath, normalizeConfig, type NormalizedConfig } from "./_config.ts";
import { closedError, errorCode, formatHostPort, toListenError } from "./errors.ts";
import { mergeSources } from "./_merge.ts";
import { shareSource } from "./_shared.ts";
import { chooseStrategy } from "./_strategy.ts";
import { systemdFds } from "./_systemd.ts";
import type { Addr, Conn, Listener, ServerConfig, TcpAddr } from "./types.ts";
import { placeSocket, removeSocketFile } from "./_unix.ts";
import { wrapListener } from "./_wrap.ts";

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

/** An address as people read it. */
export function describeAddr(addr: Addr): string {
  if (addr.transport === "tcp") return formatHostPort(addr.hostname, addr.port);
  return addr.path.startsWith("\0") ? `@${addr.path.slice(1)}` : addr.path;
}

const closeConn = (conn: Conn) => conn.close();

/** Accept errors of a peer that left before it was accepted: accept the next one at once. */
const PEER_GONE = new Set(["ECONNABORTED", "ECONNRESET", "ENOTCONN", "EPROTO"]);
/** Accept errors of exhausted descriptors or memory: wait, then accept again. */
const EXHAUSTED = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/**
 * Accepts from `raw`, riding out errors that pass, so that the accept loop never dies of them:
 * a peer that left is skipped, exhaustion is waited out with a backoff from 5 ms to 1 s.
 */
function acceptPatiently(raw: RawListener<Addr>): Promise<Conn> {
  // The usual case costs one then(); the async retry loop runs only after an error.
  return raw.accept().then(undefined, (err) => retryAccept(raw, err));
}

async function retryAccept(raw: RawListener<Addr>, first: unknown): Promise<Conn> {
  let err = first;
  for (let delay = 5;;) {
    const code = errorCode(err);
    if (!PEER_GONE.has(code)) {
      if (!EXHAUSTED.has(code)) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1000);
    }
    try {
      return await raw.accept();
    } catch (next) {
      err = next;
    }
  }
}

/** Hands out raw listeners (one per address, merged) as `count` Listener views (internal). */
export function viewsOf(raws: RawListener<Addr>[], count: number): Listener[] {
  const addrs = raws.map((r) => r.addr);
  const source = mergeSources(raws.map((r) => ({ take: () => acceptPatiently(r), close: () => r.close() })), closeConn);
  const views = shareSource<Conn>(source, count, () => closedError(describeAddr(addrs[0]!)), closeConn);
  return views.map((view) => wrapListener(view, addrs, raws[0]!.native, count > 1));
}

/** Binds a Unix socket file at `path` (safely, see placeSocket); closing removes the file. */
async function bindUnix(path: string, backlog: number, mode: number): Promise<RawListener<Addr>> {
  const a = adapter();
  const absolute = a.fs.resolve(path);
  const placed = await placeSocket(
    a.fs,
    absolute,
    mode,
    maxSocketPath(a.os),
    // Bound at a private path, linked to `path`: connections name the public one.
    (at) => a.listenUnix({ path: at, backlog, name: path }),
    (l) => l.close(),
  );
  const raw = placed.listener;
  return {
    addr: { transport: "unix", path },
    native: raw.native,
    accept: () => raw.accept(),
    close: async () => {
      await raw.close();
      // An error here (a file swapped in that could not be put back) is the caller's to see.
      await removeSocketFile(a.fs, absolute, placed.info);
    },
  };
}

/** Listens on inherited descriptors (fd:// and systemd). */
async function adoptFds(fds: number[], backlog: number, address: string): Promise<RawListener<Addr>[]> {
  const raws: RawListener<Addr>[] = [];
  try {
    for (const fd of fds) raws.push(await adapter().listenFd({ fd, backlog }));
    return raws;
  } catch (err) {
    await Promise.allSettled(raws.map((r) => r.close()));
    throw toListenError(err, address);
  }
}

/** Whether `count` TCP listeners get SO_REUSEPORT sockets, probed without blocking (internal). */
export async function tcpReusePort(count: number, shared: boolean): Promise<boolean> {
  const a = adapter();
  return chooseStrategy({
    count,
    shared,
    unix: false,
    transport: "tcp",
    reusePort: count > 1 && !shared && (await probeCapabilities()).reusePort.tcp,
    os: a.os,
    missing: a.missing("reusePort.tcp"),
  }).strategy === "reuseport";
}

/**
 * One bind step per host, each binding `perHost` TCP sockets on the step's port (internal). A
 * reuseport group first claims its address (see `Claim` in bind.ts) unless it is to `join` one.
 */
export function tcpSteps(
  hosts: BindHost[],
  perHost: number,
  backlog: number,
  reusePort: boolean,
  join = false,
): PortStep[] {
  const a = adapter();
  const portOf = (raw: RawListener<TcpAddr>) => raw.addr.port;
  const bind = (on: boolean) => (hostname: string, port: number) =>
    a.listenTcp({ hostname, port, backlog, reusePort: on });
  return hostSteps(
    hosts,
    perHost,
    bind(reusePort),
    portOf,
    reusePort && !join ? claimWith(bind(false), portOf) : undefined,
  );
}

/** `count` Listeners from per-host groups of raw sockets (internal). */
export function tcpViews(groups: Closable[][], count: number, reusePort: boolean): Listener[] {
  const raws = groups as RawListener<Addr>[][];
  if (!reusePort) return viewsOf(raws.map((g) => g[0]!), count);
  return Array.from({ length: count }, (_, i) => viewsOf(raws.map((g) => g[i]!), 1)[0]!);
}

async function bindInet(c: NormalizedConfig & { kind: "inet" }, count: number, options: BindOptions) {
  const hosts = await resolveHosts(adapter(), c.host);
  const reusePort = await tcpReusePort(count, options.shared);
  const steps = tcpSteps(hosts, reusePort ? count : 1, c.backlog, reusePort, options.join);
  const groups = await bindOnOnePort(c.port, steps);
  return tcpViews(groups, count, reusePort);
}

/** The descriptors of an fd:// or sd-listen config (internal). */
export function inheritedFds(config: ServerConfig): number[] {
  const a = adapter();
  const c = normalizeConfig(config, a.os);
  if (c.kind === "fd") return [c.fd];
  if (c.kind !== "systemd") throw new TypeError("Not an inherited socket: use fd:// or sd-listen");
  return systemdFds((n) => a.env(n), a.pid, c.name).map((f) => f.fd);
}

/** The raw listeners of an fd:// or sd-listen config (internal). */
async function adoptRaw(config: ServerConfig, backlog: number): Promise<RawListener<Addr>[]> {
  return await adoptFds(inheritedFds(config), backlog, formatAddress(config));
}

/** The options of a bind of stream listeners, checked. */
interface BindOptions {
  readonly shared: boolean;
  readonly join: boolean;
}

async function bindOnce(c: NormalizedConfig, count: number, options: BindOptions): Promise<Listener[]> {
  const a = adapter();
  switch (c.kind) {
    case "unix": {
      if (!c.abstract) return viewsOf([await bindUnix(c.path, c.backlog, c.mode)], count);
      const raw = await a.listenUnix({ path: c.path, backlog: c.backlog }).catch((err) => {
        throw toListenError(err, `@${c.path.slice(1)}`);
      });
      return viewsOf([raw], count);
    }
    case "fd":
    case "systemd":
      return viewsOf(await adoptRaw(c.kind === "fd" ? { fd: c.fd } : { systemd: c.name ?? true }, c.backlog), count);
    case "inet":
      return await bindInet(c, count, options);
  }
}

/** Binds `count` stream listeners for `config` (internal: createListener(s) and pairs). */
export async function bindStream(
  config: ServerConfig | string,
  count: number,
  options: BindOptions = { shared: false, join: false },
): Promise<Listener[]> {
  const c = normalizeConfig(toConfig(config), adapter().os);
  return await withRetry(c.retry, () => bindOnce(c, count, options));
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
  return (await bindStream(config, 1))[0]!;
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
  return await bindStream(config, count, checkFlags(options, ["shared", "join"]));
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
  const path = a.fs.resolve(c.path);
  try {
    const info = await a.fs.lstat(path);
    if (info?.kind !== "socket" || await a.fs.knock(path) === "live") return;
    // Throws, never swallowed, if something else was swapped in meanwhile (it is kept aside).
    await removeSocketFile(a.fs, path, info);
  } catch (err) {
    throw toListenError(err, path);
  }
}
