// The steps of every bind: resolving hosts, claiming an address for a reuseport group, binding
// several sockets on one port (the first picks it when 0) with cleanup when any fails, and
// retrying while an address is in use.

import type { Adapter } from "./_adapter.ts";
import { formatHostPort } from "./_address.ts";
import type { RetryOptions } from "./_config.ts";
import { errorCode, hostNotFound, toListenError } from "./_errors.ts";
import { isIP } from "./_ip.ts";

/** An address to bind; an optional one is skipped where the machine does not have it. */
export interface BindHost {
  readonly address: string;
  readonly optional: boolean;
}

/** Whether `host` names the loopback interface (RFC 6761: "localhost" and "*.localhost"). */
export function isLocalhost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}

async function lookup(a: Adapter, host: string): Promise<string[]> {
  try {
    return [...new Set(await a.platform.lookup(host))];
  } catch (err) {
    throw hostNotFound(host, err);
  }
}

/**
 * Resolves `host` to the IP addresses to bind, without duplicates (IP literals as they are).
 * "localhost" always includes both loopback addresses, 127.0.0.1 and ::1, as browsers reach it
 * on either whatever /etc/hosts says; the one the OS did not name is optional.
 */
export async function resolveHosts(a: Adapter, host: string): Promise<BindHost[]> {
  if (isIP(host)) return [{ address: host, optional: false }];
  if (isLocalhost(host)) {
    const found = await lookup(a, host).catch((): string[] => []);
    const extra = ["127.0.0.1", "::1"].filter((ip) => !found.includes(ip));
    return [
      ...found.map((address) => ({ address, optional: false })),
      ...extra.map((address) => ({ address, optional: true })),
    ];
  }
  const found = await lookup(a, host);
  if (found.length === 0) throw hostNotFound(host, undefined);
  return found.map((address) => ({ address, optional: false }));
}

/** Codes of a bind to an address this machine does not have. */
const ABSENT = new Set(["EADDRNOTAVAIL", "EAFNOSUPPORT"]);

/**
 * One bind step per host, each binding `perHost` sockets with `bind(host, port)` on the step's
 * port; an optional host the machine does not have gives no sockets.
 */
export function hostSteps<S extends Closable>(
  hosts: BindHost[],
  perHost: number,
  bind: (host: string, port: number) => Promise<S>,
  portOf: (socket: S) => number,
  claim?: Claim,
): PortStep[] {
  return hosts.map(({ address, optional }) => async (port) => {
    try {
      const claimHost = claim && ((at: number) => claim(address, at));
      const sockets = await bindEach(perHost, address, port, (at) => bind(address, at), portOf, claimHost);
      return { sockets, port: portOf(sockets[0]!) };
    } catch (err) {
      if (optional && ABSENT.has(errorCode(err))) return { sockets: [], port };
      throw err;
    }
  });
}

/** Anything with an async close. */
export interface Closable {
  close(): Promise<void>;
}

/**
 * Makes sure nobody holds `host:port` before a SO_REUSEPORT group binds there, and returns the
 * port (the OS's pick when `port` is 0). It binds one socket without SO_REUSEPORT, which fails
 * with EADDRINUSE when any socket, reuseport or not, has the address, and closes it. Without
 * this, a group would silently join another server's reuseport sockets and split its traffic.
 * A race remains: a reuseport server binding in the moment between this close and the group's
 * first bind joins it undetected (a plain one makes the group's bind fail, as it should).
 */
export type Claim = (host: string, port: number) => Promise<number>;

/**
 * A {@linkcode Claim} made of a plain bind and its close.
 *
 * @param bind Binds one socket without SO_REUSEPORT.
 * @param portOf The port a socket got.
 */
export function claimWith<S extends Closable>(
  bind: (host: string, port: number) => Promise<S>,
  portOf: (socket: S) => number,
): Claim {
  return async (host, port) => {
    const socket = await bind(host, port);
    const got = portOf(socket);
    await socket.close();
    return got;
  };
}

/**
 * Binds `count` sockets with `bind(port)`: the first on `port` (0 picks one), the others on the
 * port the first got; with `claim`, the address is claimed first (see {@linkcode Claim}). If any
 * bind fails, every socket already bound is closed and the error, as a ListenError, is thrown.
 */
export async function bindEach<S extends Closable>(
  count: number,
  host: string,
  port: number,
  bind: (port: number) => Promise<S>,
  portOf: (socket: S) => number,
  claim?: (port: number) => Promise<number>,
): Promise<S[]> {
  const sockets: S[] = [];
  let at = port;
  try {
    if (claim) at = await claim(at);
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

/** How many fresh ports to try when a later bind finds the port the first one picked in use. */
const FRESH_PORT_TRIES = 10;

/** One step of {@linkcode bindOnOnePort}: binds on `port` and returns its sockets and their port. */
export type PortStep = (port: number) => Promise<{ sockets: Closable[]; port: number }>;

/**
 * Runs `steps` in order on one port: the first on `port`, the rest on the port it got. If a
 * step fails, every socket of the earlier steps is closed; when `port` was 0 and a later step
 * found the port in use (another program has it on another address or protocol), everything
 * is tried again on a fresh port, a bounded number of times.
 *
 * @returns The sockets of each step, in the steps' order (none for an optional host the
 * machine does not have).
 */
export async function bindOnOnePort(port: number, steps: PortStep[]): Promise<Closable[][]> {
  for (let attempt = 1;; attempt++) {
    const done: Closable[][] = [];
    let at = port;
    try {
      for (const step of steps) {
        const { sockets, port: got } = await step(at);
        done.push(sockets);
        at = got;
      }
      return done;
    } catch (err) {
      await Promise.allSettled(done.flat().map((s) => s.close()));
      const again = port === 0 && done.length > 0 && errorCode(err) === "EADDRINUSE" && attempt < FRESH_PORT_TRIES;
      if (!again) throw err;
    }
  }
}

/**
 * Calls `bind` until it does not fail with EADDRINUSE, at most `retry.attempts` times,
 * `retry.delayMs` apart.
 */
export async function withRetry<T>(retry: RetryOptions, bind: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await bind();
    } catch (err) {
      if (attempt >= retry.attempts || errorCode(err) !== "EADDRINUSE") throw err;
      await new Promise((resolve) => setTimeout(resolve, retry.delayMs));
    }
  }
}
