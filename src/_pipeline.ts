// The one bind pipeline, the same for TCP, UDP and both on one port: a config is normalized,
// the strategy decided (_strategy.ts), the sockets bound all or none (_bind.ts, with claims and
// retries), then handed out as views (_views.ts). createListener(s), createUdpListener(s),
// createListenerPair(s) and the plans' binds are thin callers of it.

import type { Adapter, RawDatagram, RawListener } from "./_adapter.ts";
import { toConfig } from "./_address.ts";
import { type BindHost, bindOnOnePort, claimWith, hostSteps, resolveHosts, withRetry } from "./_bind.ts";
import { probeCapsOf } from "./_caps.ts";
import { maxSocketPath, normalizeConfig, type NormalizedConfig, show } from "./_config.ts";
import { toListenError } from "./_errors.ts";
import { decideStrategy, type StrategyChoice } from "./_strategy.ts";
import { parentFds, systemdFds } from "./_systemd.ts";
import { withProxyProtocol } from "./_proxy_listener.ts";
import { placeSocket, removeSocketFile } from "./_unix.ts";
import { datagramViews, listenerViews } from "./_views.ts";
import { formatAddress } from "./address.ts";
import { ListenError } from "./errors.ts";
import type { DatagramListener, Listener, ServerConfig } from "./types.ts";

/** What a transport brings to the pipeline: how to bind one socket and hand sockets out. */
export interface Transport<R extends { close(): Promise<void> }, V> {
  readonly name: "tcp" | "udp";
  bind(a: Adapter, hostname: string, port: number, reusePort: boolean, backlog: number): Promise<R>;
  portOf(raw: R): number;
  /** The sockets of every address as `count` views of them. */
  views(raws: R[], count: number): V[];
}

/** Stream sockets: TCP listeners. */
export const TCP: Transport<RawListener, Listener> = {
  name: "tcp",
  bind: (a, hostname, port, reusePort, backlog) => a.listenTcp({ hostname, port, backlog, reusePort }),
  portOf: (raw) => (raw.addr.transport === "tcp" ? raw.addr.port : 0),
  views: listenerViews,
};

/** Datagram sockets: UDP. */
export const UDP: Transport<RawDatagram, DatagramListener> = {
  name: "udp",
  bind: (a, hostname, port, reusePort) => a.listenUdp({ hostname, port, reusePort }),
  portOf: (raw) => raw.addr.port,
  views: datagramViews,
};

/** How a group of sockets is bound on every host's address. */
export interface GroupOptions {
  /** The addresses to bind, all on one port. */
  readonly hosts: readonly BindHost[];
  /** The port; 0 lets the first bind pick it. */
  readonly port: number;
  /** Sockets per address: one per listener for reuseport, else one. */
  readonly perHost: number;
  readonly reusePort: boolean;
  /** Join the reuseport sockets already there, rather than claim the address first. */
  readonly join: boolean;
  readonly backlog: number;
}

/**
 * Binds every transport's sockets on every host, all on one port, all or none (a port picked
 * with 0 is tried again fresh where a later bind finds it taken).
 *
 * @returns For each transport, its sockets per host that the machine has.
 */
export async function bindGroups(
  a: Adapter,
  // deno-lint-ignore no-explicit-any
  transports: readonly Transport<any, unknown>[],
  g: GroupOptions,
): Promise<{ close(): Promise<void> }[][][]> {
  const steps = transports.flatMap((t) => {
    const bind = (on: boolean) => (host: string, port: number) => t.bind(a, host, port, on, g.backlog);
    const claim = g.reusePort && !g.join ? claimWith(bind(false), t.portOf) : undefined;
    return hostSteps([...g.hosts], g.perHost, bind(g.reusePort), t.portOf, claim);
  });
  const done = await bindOnOnePort(g.port, steps);
  const n = g.hosts.length;
  return transports.map((_, k) => done.slice(k * n, (k + 1) * n).filter((sockets) => sockets.length > 0));
}

/** Per-host groups of one transport's sockets as `count` views: one socket each, or shared ones. */
export function groupViews<R extends { close(): Promise<void> }, V>(
  t: Transport<R, V>,
  groups: { close(): Promise<void> }[][],
  count: number,
  reusePort: boolean,
): V[] {
  const raws = groups as R[][];
  if (!reusePort) return t.views(raws.map((g) => g[0]!), count);
  return Array.from({ length: count }, (_, i) => t.views(raws.map((g) => g[i]!), 1)[0]!);
}

/** The checked options of a bind. */
export interface BindOptions {
  readonly shared: boolean;
  readonly join: boolean;
}

/** The strategy for `count` views of `transports` on `c` (reuseport only where every transport has it). */
async function decide(
  a: Adapter,
  c: NormalizedConfig,
  count: number,
  transports: readonly ("tcp" | "udp")[],
  shared: boolean,
) {
  const caps = await probeCapsOf(a);
  const placement = c.kind === "inet" ? "inet" : c.kind === "unix" ? "unix" : "inherited";
  const choices: StrategyChoice[] = transports.map((transport) =>
    decideStrategy({
      placement,
      transport,
      count,
      shared,
      across: "views",
      caps,
      missing: a.missing(`reusePort.${transport}`),
    })
  );
  // Both transports of a pair are reuseport, or both share: the first that cannot decides.
  return choices.find((ch) => ch.strategy !== "reuseport") ?? choices[0]!;
}

/** Binds `count` views of each of `transports` on an IP address and port (the pipeline's inet path). */
async function bindInet(
  a: Adapter,
  c: NormalizedConfig & { kind: "inet" },
  count: number,
  // deno-lint-ignore no-explicit-any
  transports: readonly Transport<any, unknown>[],
  options: BindOptions,
): Promise<unknown[][]> {
  const hosts = await resolveHosts(a, c.host);
  const choice = await decide(a, c, count, transports.map((t) => t.name), options.shared);
  const reusePort = choice.strategy === "reuseport";
  const perHost = reusePort ? count : 1;
  return await withRetry(c.retry, async () => {
    const groups = await bindGroups(a, transports, {
      hosts,
      port: c.port,
      perHost,
      reusePort,
      join: options.join,
      backlog: c.backlog,
    });
    return transports.map((t, k) => groupViews(t, groups[k]!, count, reusePort));
  });
}

/** Binds a Unix socket file at `path` (safely, see placeSocket); closing removes the file. */
async function bindUnixFile(a: Adapter, path: string, backlog: number, mode: number): Promise<RawListener> {
  const fs = a.platform.fs;
  const absolute = fs.resolve(path);
  const placed = await placeSocket(
    fs,
    absolute,
    mode,
    maxSocketPath(a.os),
    (at) => a.listenUnix({ path: at, backlog }),
    (l) => l.close(),
  );
  const raw = placed.listener;
  return {
    // Connections name this public path as their local address, not the private one bound.
    addr: { transport: "unix", path },
    native: raw.native,
    accept: () => raw.accept(),
    close: async () => {
      await raw.close();
      // An error here (a file swapped in that could not be put back) is the caller's to see.
      await removeSocketFile(fs, absolute, placed.info);
    },
  };
}

/** The descriptors of an fd:// or sd-listen config. */
export function inheritedFds(a: Adapter, c: NormalizedConfig): number[] {
  if (c.kind === "fd") return [c.fd];
  if (c.kind !== "systemd") throw new TypeError("Not an inherited socket: use fd://, sd-listen or parent-listen");
  const env = (n: string) => a.platform.env(n);
  const fds = c.from === "systemd" ? systemdFds(env, a.platform.pid, c.name) : parentFds(env, a.platform.ppid, c.name);
  return fds.map((f) => f.fd);
}

/** Listens on inherited descriptors (fd:// and systemd), all or none. */
async function adoptFds(a: Adapter, fds: number[], backlog: number, address: string): Promise<RawListener[]> {
  const raws: RawListener[] = [];
  try {
    for (const fd of fds) raws.push(await a.listenFd({ fd, backlog }));
    return raws;
  } catch (err) {
    await Promise.allSettled(raws.map((r) => r.close()));
    throw toListenError(err, address);
  }
}

/** The raw listeners of a Unix socket or inherited descriptors: one socket, never reuseport. */
async function bindOther(a: Adapter, c: Exclude<NormalizedConfig, { kind: "inet" }>): Promise<RawListener[]> {
  if (c.kind === "unix") {
    if (!c.abstract) return [await bindUnixFile(a, c.path, c.backlog, c.mode)];
    const raw = await a.listenUnix({ path: c.path, backlog: c.backlog }).catch((err) => {
      throw toListenError(err, `@${c.path.slice(1)}`);
    });
    return [raw];
  }
  const spec = formatAddress(c.kind === "fd" ? { fd: c.fd } : { [c.from]: c.name ?? true });
  return await adoptFds(a, inheritedFds(a, c), c.backlog, spec);
}

/** `count` stream listeners on `config`: createListener(s). */
export async function bindStreams(
  a: Adapter,
  config: ServerConfig | string,
  count: number,
  options: BindOptions,
): Promise<Listener[]> {
  const c = normalizeConfig(toConfig(config), a.os);
  const views = c.kind === "inet"
    ? (await bindInet(a, c, count, [TCP], options))[0] as Listener[]
    : await withRetry(c.retry, async () => listenerViews(await bindOther(a, c), count));
  return withProxy(views, c);
}

/** Listeners that read a PROXY protocol header first, where the config asks for it. */
function withProxy(listeners: Listener[], c: NormalizedConfig): Listener[] {
  const proxy = c.proxy;
  return proxy === undefined ? listeners : listeners.map((l) => withProxyProtocol(l, proxy));
}

/** The inet part of a UDP config, or why it has none. */
export function checkUdp(a: Adapter, c: NormalizedConfig): NormalizedConfig & { kind: "inet" } {
  if (c.kind !== "inet") {
    const [field, value] = c.kind === "unix"
      ? ["uds", show(c.path)]
      : c.kind === "fd"
      ? ["fd", String(c.fd)]
      : [c.from, show(c.name ?? true)];
    throw new TypeError(`Cannot listen for UDP as '${field}' names no UDP address: current value is ${value}`);
  }
  if (!a.udp) {
    const address = formatAddress({ host: c.host, port: c.port });
    throw new ListenError(`Cannot bind UDP ${address} as UDP is unavailable: ${a.missing("udp")}`, {
      code: "ENOTSUP",
      address,
    });
  }
  return c;
}

/** `count` UDP sockets on `config`: createUdpListener(s). */
export async function bindDatagrams(
  a: Adapter,
  config: ServerConfig | string,
  count: number,
  options: BindOptions,
): Promise<DatagramListener[]> {
  const cfg = toConfig(config);
  const normalized = normalizeConfig(cfg, a.os);
  if (normalized.proxy !== undefined) {
    throw new TypeError(
      `Cannot listen for UDP as 'proxyProtocol' is read on stream connections only: current value is ${
        show(cfg.proxyProtocol)
      }`,
    );
  }
  const c = checkUdp(a, normalized);
  return (await bindInet(a, c, count, [UDP], options))[0] as DatagramListener[];
}

/** `count` pairs of a TCP listener and a UDP socket on one port: createListenerPair(s). */
export async function bindPairs(
  a: Adapter,
  config: ServerConfig | string,
  count: number,
): Promise<{ tcp: Listener; udp: DatagramListener }[]> {
  const c = checkUdp(a, normalizeConfig(toConfig(config), a.os));
  const [tcp, udp] = await bindInet(a, c, count, [TCP, UDP], { shared: false, join: false });
  // The PROXY protocol, if asked for, is read on the TCP side (HTTP/3 clients reach UDP directly).
  return withProxy(tcp as Listener[], c).map((t, i) => ({ tcp: t, udp: (udp as DatagramListener[])[i]! }));
}
