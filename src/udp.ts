// createUdpListener(s): UDP sockets for HTTP/3 and QUIC servers, one or many on one port.

import { adapter, type RawDatagram } from "./adapter.ts";
import { bindEach, resolveHost } from "./bind.ts";
import { capabilities } from "./capabilities.ts";
import { checkCount, normalizeConfig } from "./config.ts";
import { closedError, formatHostPort, ListenError } from "./errors.ts";
import { shareSource } from "./shared.ts";
import { chooseStrategy } from "./strategy.ts";
import type { DatagramListener, NetAddr, ServerConfig } from "./types.ts";
import { wrapDatagram } from "./wrap.ts";

function viewsOf(raw: RawDatagram, count: number): DatagramListener[] {
  const address = formatHostPort(raw.addr.hostname, raw.addr.port);
  const closed = () => closedError(address);
  const views = shareSource<[Uint8Array, NetAddr]>(
    { take: () => raw.receive(), close: () => raw.close() },
    count,
    closed,
    () => {},
  );
  return views.map((view) => wrapDatagram(view, raw.addr, raw.native, (d, to) => raw.send(d, to), closed));
}

async function bindDatagrams(config: ServerConfig, count: number): Promise<DatagramListener[]> {
  const a = adapter();
  const c = normalizeConfig(config, a.os);
  if (c.kind === "unix") {
    throw new TypeError(
      `Cannot listen for UDP on a Unix socket path: current value of 'uds' is ${JSON.stringify(c.path)}`,
    );
  }
  const address = formatHostPort(c.host, c.port);
  if (!a.udp) {
    throw new ListenError(`Cannot bind UDP ${address} as UDP is unavailable: ${a.missing("udp")}`, {
      code: "ENOTSUP",
      address,
    });
  }
  const host = await resolveHost(a, c.host);
  const { strategy } = chooseStrategy({
    count,
    shared: false,
    unix: false,
    transport: "udp",
    reusePort: count > 1 && capabilities().reusePort.udp,
    os: a.os,
    missing: a.missing("reusePort.udp"),
  });
  const reusePort = strategy === "reuseport";
  const raws = await bindEach(
    reusePort ? count : 1,
    host,
    c.port,
    (port) => a.listenUdp({ hostname: host, port, reusePort }),
    (raw) => raw.addr.port,
  );
  return reusePort ? raws.flatMap((raw) => viewsOf(raw, 1)) : viewsOf(raws[0]!, count);
}

/**
 * Binds one UDP socket on `host:port` (port 0 picks a free one; to serve HTTP/3 beside TCP, pass
 * the TCP listener's port).
 *
 * @param config Where to bind (`uds` is not allowed).
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
export async function createUdpListener(config: ServerConfig): Promise<DatagramListener> {
  return (await bindDatagrams(config, 1))[0]!;
}

/**
 * Binds `count` UDP sockets for `count` workers: independent sockets on one port where UDP
 * SO_REUSEPORT really works, else one socket handed out as `count` views.
 *
 * @param config Where to bind.
 * @param count How many, from 1.
 * @returns `count` datagram listeners on one address.
 * @throws {RangeError} `count` is not a positive integer.
 * @throws {ListenError} The OS refused; every socket already bound has been closed.
 * @example
 * ```ts
 * import { capabilities, createUdpListeners } from "../mod.ts";
 * if (capabilities().udp) {
 *   const sockets = await createUdpListeners({ port: 0 }, 2);
 *   await Promise.all(sockets.map((s) => s.close()));
 * }
 * ```
 */
export async function createUdpListeners(config: ServerConfig, count: number): Promise<DatagramListener[]> {
  checkCount(count);
  return await bindDatagrams(config, count);
}
