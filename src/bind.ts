// Shared steps of every bind: resolving the host, binding N sockets on one port with cleanup on
// failure, and turning raw sockets into views.

import type { Adapter } from "./adapter.ts";
import { isIP } from "./config.ts";
import { formatHostPort, hostNotFound, toListenError } from "./errors.ts";

/** Resolves `host` to the IP address to bind (IP literals are used as they are). */
export async function resolveHost(a: Adapter, host: string): Promise<string> {
  if (isIP(host)) return host;
  let addresses: string[];
  try {
    addresses = await a.lookup(host);
  } catch (err) {
    throw hostNotFound(host, err);
  }
  if (addresses.length === 0) throw hostNotFound(host, undefined);
  return addresses[0]!;
}

/** Anything with an async close. */
interface Closable {
  close(): Promise<void>;
}

/**
 * Binds `count` sockets with `bind(port)`: the first on `port` (0 picks one), the others on the
 * port the first got. If any bind fails, every socket already bound is closed and the error,
 * as a ListenError, is thrown.
 */
export async function bindEach<S extends Closable>(
  count: number,
  host: string,
  port: number,
  bind: (port: number) => Promise<S>,
  portOf: (socket: S) => number,
): Promise<S[]> {
  const sockets: S[] = [];
  let at = port;
  try {
    for (let i = 0; i < count; i++) {
      sockets.push(await bind(at));
      at = portOf(sockets[0]!);
    }
    return sockets;
  } catch (err) {
    await Promise.allSettled(sockets.map((s) => s.close()));
    throw toListenError(err, formatHostPort(host, at));
  }
}
