// createUdpListener(s): UDP sockets for HTTP/3 and QUIC servers, one or many on one port
// (through the bind pipeline, _pipeline.ts).

import { adapter } from "./_adapter.ts";
import { checkCount, checkFlags } from "./_config.ts";
import { bindDatagrams } from "./_pipeline.ts";
import type { DatagramListener, ServerConfig } from "./types.ts";

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
  return (await bindDatagrams(adapter(), config, 1, { shared: false, join: false }))[0]!;
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
  return await bindDatagrams(adapter(), config, count, { shared: false, join: checkFlags(options, ["join"]).join });
}

/** Options of {@linkcode createUdpListeners}. */
export interface UdpListenersOptions {
  /**
   * Join SO_REUSEPORT sockets already on the address instead of failing with EADDRINUSE.
   * @default {false}
   */
  join?: boolean;
}
