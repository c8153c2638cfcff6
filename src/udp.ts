// createUdpListener(s): UDP sockets for HTTP/3 and QUIC servers, one or many on one port.

import { adapter, type RawDatagram } from "./_adapter.ts";
import { toConfig } from "./address.ts";
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
import { checkCount, checkFlags, normalizeConfig, type NormalizedConfig, show } from "./_config.ts";
import { closedError, formatHostPort, ListenError } from "./errors.ts";
import { mergeSources } from "./_merge.ts";
import { shareSource } from "./_shared.ts";
import { chooseStrategy } from "./_strategy.ts";
import type { DatagramListener, NetAddr, ServerConfig } from "./types.ts";
import { wrapDatagram } from "./_wrap.ts";

type Datagram = [Uint8Array, NetAddr];

/** Sends through the socket of the destination's address family (the first one otherwise). */
function sender(raws: RawDatagram[]): (data: Uint8Array, to: NetAddr) => Promise<number> {
  if (raws.length === 1) return (data, to) => raws[0]!.send(data, to);
  return (data, to) => {
    const v6 = to.hostname.includes(":");
    const raw = raws.find((r) => r.addr.hostname.includes(":") === v6) ?? raws[0]!;
    return raw.send(data, to);
  };
}

function viewsOf(raws: RawDatagram[], count: number): DatagramListener[] {
  const first = raws[0]!;
  const closed = () => closedError(formatHostPort(first.addr.hostname, first.addr.port));
  const source = mergeSources<Datagram>(
    raws.map((r) => ({ take: () => r.receive(), close: () => r.close() })),
    () => {},
  );
  const send = sender(raws);
  return shareSource<Datagram>(source, count, closed, () => {})
    .map((view) => wrapDatagram(view, first.addr, first.native, send, closed));
}

/** Checks that UDP can be used with `c`, and returns its inet part (internal). */
export function checkUdp(c: NormalizedConfig): NormalizedConfig & { kind: "inet" } {
  const a = adapter();
  if (c.kind !== "inet") {
    const [field, value] = c.kind === "unix"
      ? ["uds", show(c.path)]
      : c.kind === "fd"
      ? ["fd", String(c.fd)]
      : ["systemd", show(c.name ?? true)];
    throw new TypeError(
      `Cannot listen for UDP as '${field}' names no UDP address: current value is ${value}`,
    );
  }
  if (!a.udp) {
    const address = formatHostPort(c.host, c.port);
    throw new ListenError(`Cannot bind UDP ${address} as UDP is unavailable: ${a.missing("udp")}`, {
      code: "ENOTSUP",
      address,
    });
  }
  return c;
}

/** Whether `count` UDP sockets get SO_REUSEPORT, probed without blocking (internal). */
export async function udpReusePort(count: number): Promise<boolean> {
  const a = adapter();
  return chooseStrategy({
    count,
    shared: false,
    unix: false,
    transport: "udp",
    reusePort: count > 1 && (await probeCapabilities()).reusePort.udp,
    os: a.os,
    missing: a.missing("reusePort.udp"),
  }).strategy === "reuseport";
}

/**
 * One bind step per host, each binding `perHost` UDP sockets on the step's port (internal). A
 * reuseport group first claims its address (see `Claim` in bind.ts) unless it is to `join` one.
 */
export function udpSteps(hosts: BindHost[], perHost: number, reusePort: boolean, join = false): PortStep[] {
  const a = adapter();
  const portOf = (raw: RawDatagram) => raw.addr.port;
  const bind = (on: boolean) => (hostname: string, port: number) => a.listenUdp({ hostname, port, reusePort: on });
  return hostSteps(
    hosts,
    perHost,
    bind(reusePort),
    portOf,
    reusePort && !join ? claimWith(bind(false), portOf) : undefined,
  );
}

/** `count` DatagramListeners from per-host groups of raw sockets (internal). */
export function udpViews(groups: Closable[][], count: number, reusePort: boolean): DatagramListener[] {
  const raws = groups as RawDatagram[][];
  if (!reusePort) return viewsOf(raws.map((g) => g[0]!), count);
  return Array.from({ length: count }, (_, i) => viewsOf(raws.map((g) => g[i]!), 1)[0]!);
}

async function bindDatagrams(config: ServerConfig | string, count: number, join = false): Promise<DatagramListener[]> {
  const a = adapter();
  const c = checkUdp(normalizeConfig(toConfig(config), a.os));
  const hosts = await resolveHosts(a, c.host);
  const reusePort = await udpReusePort(count);
  return await withRetry(c.retry, async () => {
    const groups = await bindOnOnePort(c.port, udpSteps(hosts, reusePort ? count : 1, reusePort, join));
    return udpViews(groups, count, reusePort);
  });
}

/**
 * Binds one UDP socket on `host:port` (port 0 picks a free one; to serve HTTP/3 beside TCP, see
 * {@linkcode createListenerPair}). A host name that resolves to several addresses gets a socket
 * on each, received from as one; replies leave through the socket of the receiver's family.
 *
 * @param config Where to bind (`uds` and `fd` are not allowed), or an address string.
 * @returns The socket, ready to receive.
 * @throws {RangeError} A config field is out of range.
 * @throws {ListenError} The OS refused, or this runtime cannot do UDP (code `ENOTSUP`, with the fix).
 * @example
 * ```ts
 * import { capabilities, createUdpListener } from "../mod.ts";
 * if (capabilities().udp) {
 *   await using udp = await createUdpListener({ port: 0 });
 *   console.assert(udp.addr.port > 0);
 * }
 * ```
 */
export async function createUdpListener(config: ServerConfig | string): Promise<DatagramListener> {
  return (await bindDatagrams(config, 1))[0]!;
}

/**
 * Binds `count` UDP sockets for `count` workers: independent sockets on one port where UDP
 * SO_REUSEPORT really works, else one socket handed out as `count` views.
 *
 * @param config Where to bind, or an address string.
 * @param count How many, from 1.
 * @param options `join: true` joins reuseport sockets already on the address (see
 * `CreateListenersOptions.join`).
 * @returns `count` datagram listeners on one address.
 * @throws {RangeError} `count` is not a positive integer.
 * @throws {ListenError} The OS refused; every socket already bound has been closed. EADDRINUSE
 * when anyone holds the address, with or without SO_REUSEPORT, unless `join` is set.
 * @example
 * ```ts
 * import { capabilities, createUdpListeners } from "../mod.ts";
 * if (capabilities().udp) {
 *   const sockets = await createUdpListeners({ port: 0 }, 2);
 *   await Promise.all(sockets.map((s) => s.close()));
 * }
 * ```
 */
export async function createUdpListeners(
  config: ServerConfig | string,
  count: number,
  options?: UdpListenersOptions,
): Promise<DatagramListener[]> {
  checkCount(count);
  return await bindDatagrams(config, count, checkFlags(options, ["join"]).join);
}

/** Options of {@linkcode createUdpListeners}. */
export interface UdpListenersOptions {
  /**
   * Join SO_REUSEPORT sockets already on the address instead of failing with EADDRINUSE.
   * @default {false}
   */
  join?: boolean;
}
