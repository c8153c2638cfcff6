// TCP and UDP on the same port, for HTTP/3 beside HTTP/1.1 and HTTP/2 (Alt-Svc needs one port):
// both transports through one run of the bind pipeline (_pipeline.ts).

import { adapter } from "./_adapter.ts";
import { checkCount } from "./_config.ts";
import { bindPairs } from "./_pipeline.ts";
import type { DatagramListener, Listener, ServerConfig } from "./types.ts";

/** A TCP listener and a UDP socket on the same port. */
export interface ListenerPair {
  /** For HTTP/1.1 and HTTP/2. */
  readonly tcp: Listener;
  /** For HTTP/3 (QUIC). */
  readonly udp: DatagramListener;
}

/**
 * Binds `count` pairs of a TCP listener and a UDP socket on one port. With port 0 the TCP bind
 * picks the port and UDP joins it; if another program has that UDP port, both are tried again on
 * a fresh port (up to 10 times). Workers get reuseport sockets for both where both work, or one
 * shared socket of each.
 *
 * @param config Where to bind (host and port), or an address string.
 * @param count How many pairs, from 1.
 * @returns The pairs, all on one port.
 * @throws {ListenError} The OS refused, or this runtime cannot do UDP.
 * @example
 * ```ts
 * import { capabilities, createListenerPairs } from "../mod.ts";
 * if (capabilities().udp) {
 *   const pairs = await createListenerPairs({ port: 0 }, 2);
 *   await Promise.all(pairs.flatMap((p) => [p.tcp.close(), p.udp.close()]));
 * }
 * ```
 */
export async function createListenerPairs(config: ServerConfig | string, count: number): Promise<ListenerPair[]> {
  checkCount(count);
  return await bindPairs(adapter(), config, count);
}

/**
 * Binds a TCP listener and a UDP socket on the same port (see {@linkcode createListenerPairs}).
 *
 * @param config Where to bind, or an address string.
 * @returns The pair.
 * @throws {ListenError} The OS refused, or this runtime cannot do UDP.
 * @example
 * ```ts
 * import { capabilities, createListenerPair } from "../mod.ts";
 * if (capabilities().udp) {
 *   const { tcp, udp } = await createListenerPair("127.0.0.1:0");
 *   console.assert(tcp.addr.transport === "tcp" && tcp.addr.port === udp.addr.port);
 *   await tcp.close();
 *   await udp.close();
 * }
 * ```
 */
export async function createListenerPair(config: ServerConfig | string): Promise<ListenerPair> {
  return (await createListenerPairs(config, 1))[0]!;
}
