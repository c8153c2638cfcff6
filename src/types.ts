// The public contract: configuration, listeners, connections, datagram sockets and capabilities.
// Every adapter produces these shapes, so a worker never needs to know its runtime.

import type { ProxyInfo } from "./_proxy_info.ts";
import type { ProxyProtocolOptions } from "./_proxy_options.ts";

/**
 * Where and how to bind. Every field is optional; see each for its default.
 *
 * @example
 * ```ts
 * import type { ServerConfig } from "./types.ts";
 * const config: ServerConfig = { host: "127.0.0.1", port: 0 };
 * ```
 */
export interface ServerConfig {
  /**
   * Host name or IP address to bind. Host names are resolved; `"::"` and `"0.0.0.0"` mean all
   * interfaces (`"::"` is dual-stack where the OS allows).
   * @default {"127.0.0.1"}
   */
  host?: string;
  /**
   * TCP or UDP port; 0 asks the OS for a free (ephemeral) port.
   * @default {8000}
   */
  port?: number;
  /** Unix socket path. Not with `host` or `port` (a RangeError names both). */
  uds?: string;
  /**
   * Length of the queue of connections waiting for `accept()`, where the runtime lets us set it
   * (see {@linkcode Capabilities.backlog}).
   * @default {2048}
   */
  backlog?: number;
  /**
   * File mode of the Unix socket file.
   * @default {0o660}
   */
  udsMode?: number;
  /**
   * Listen on this inherited, already bound descriptor (TCP or Unix) instead of binding. Says
   * where to listen, as do `host`/`port`, `uds` and `systemd`: at most one of them.
   */
  fd?: number;
  /**
   * Listen on the sockets systemd passed (socket activation): `true` for all of them, a name
   * for those whose `FileDescriptorName=` it is.
   */
  systemd?: true | string;
  /**
   * Listen on the sockets a predecessor process handed over when it started this one (with
   * {@linkcode startSuccessor}, or `polybind serve` on SIGUSR2): `true` for all of them, a name
   * for those it named so. The successor form of `systemd`.
   */
  parent?: true | string;
  /**
   * Read the PROXY protocol header (v1 or v2) a load balancer sends first on every connection:
   * `true` for the defaults (headers from loopback only, required, within 5 s), or the options.
   * Connections then report the client's address; see {@linkcode ProxyProtocolOptions}.
   * Stream listeners only.
   * @default {false}
   */
  proxyProtocol?: boolean | ProxyProtocolOptions;
  /**
   * Try again while the address is in use (a restart whose old process is still letting go).
   * @default {undefined} fail at once
   */
  retry?: { attempts: number; delayMs: number };
}

/** A TCP or UDP address: an IP address and a port. */
export interface NetAddr {
  /** `"tcp"` or `"udp"`. */
  readonly transport: "tcp" | "udp";
  /** IP address, without brackets for IPv6. */
  readonly hostname: string;
  /** Port number. */
  readonly port: number;
}

/** A Unix socket address. */
export interface UnixAddr {
  /** Always `"unix"`. */
  readonly transport: "unix";
  /** Path of the socket file. */
  readonly path: string;
}

/** The address a TCP listener is bound to. */
export interface TcpAddr extends NetAddr {
  /** Always `"tcp"`. */
  readonly transport: "tcp";
}

/** The address a UDP socket is bound to. */
export interface UdpAddr extends NetAddr {
  /** Always `"udp"`. */
  readonly transport: "udp";
}

/** The address of a stream listener or connection. */
export type Addr = TcpAddr | UnixAddr;

/**
 * One accepted stream connection (TCP or Unix), the same on every runtime.
 *
 * @example
 * ```ts
 * import type { Conn } from "./types.ts";
 * async function echo(conn: Conn): Promise<void> {
 *   const buf = new Uint8Array(4096);
 *   for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
 *     await conn.write(buf.subarray(0, n));
 *   }
 *   conn.close();
 * }
 * ```
 */
export interface Conn extends AsyncDisposable {
  /** The local end's address. */
  readonly localAddr: Addr;
  /** The peer's address. */
  readonly remoteAddr: Addr;
  /**
   * Reads into `p` and resolves with the number of bytes read, or `null` at end of stream.
   * Resolves with `null` once the peer has gone, whether it closed (FIN) or reset (RST) the
   * connection, before or after accept; a write to such a peer rejects.
   * @param p The buffer to fill.
   */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes `p` and resolves with the number of bytes written once the runtime has taken them.
   * @param p The bytes to send.
   */
  write(p: Uint8Array): Promise<number>;
  /**
   * The incoming bytes as a stream. Use it or `read()`, not both. Ends without an error once
   * the peer has gone, as `read()` returns `null`.
   */
  readonly readable: ReadableStream<Uint8Array>;
  /** The outgoing bytes as a stream. Use it or `write()`, not both. */
  readonly writable: WritableStream<Uint8Array>;
  /** Sends end-of-stream to the peer (half close); reading goes on. */
  closeWrite(): Promise<void>;
  /** Closes the connection at once. Idempotent. */
  close(): void;
  /**
   * Turns Nagle's algorithm off (`true`, the default) or on. A no-op on Unix sockets.
   * @param on Whether to disable delaying small writes.
   */
  setNoDelay(on?: boolean): void;
  /**
   * Turns TCP keep-alive on (`true`, the default) or off. A no-op on Unix sockets.
   * @param on Whether to send keep-alive probes.
   */
  setKeepAlive(on?: boolean): void;
  /** The runtime's own connection object (`Deno.Conn`, a Bun socket or a `net.Socket`). */
  readonly native: unknown;
  /**
   * What the PROXY protocol header of this connection said, on a listener that reads it
   * (`proxyProtocol`): its version, command, addresses and TLVs (read them with `getAlpn`,
   * `getAuthority`, ...), and `via`, the addresses of the connection the proxy made.
   * `remoteAddr` and `localAddr` are then the header's (for a v2 LOCAL or v1 UNKNOWN header,
   * the connection's own). `undefined` for a connection without a header, and on other
   * listeners.
   */
  readonly proxy?: ProxyInfo;
}

/**
 * A bound stream socket that hands out connections, the same on every runtime.
 *
 * @example
 * ```ts
 * import { createListener } from "../mod.ts";
 * await using listener = await createListener({ port: 0 });
 * console.assert(listener.addr.transport === "tcp");
 * ```
 */
export interface Listener extends AsyncIterable<Conn>, AsyncDisposable {
  /** The bound address (for TCP, the real port when 0 was asked for); the first of `addrs`. */
  readonly addr: Addr;
  /** Every address this listener accepts on (several when a host name resolves to several). */
  readonly addrs: readonly Addr[];
  /** Resolves with the next connection; rejects with a `ListenError` once the listener is closed. */
  accept(): Promise<Conn>;
  /**
   * Stops accepting and releases the socket (or this view of a shared one). Idempotent.
   * Resolves once the listener no longer accepts and its port or path is free (binding the same
   * address again succeeds); connections already accepted stay open until closed. `drain()` is
   * the way to wait for queued connections. Rejects if its Unix socket file could not be removed
   * safely (the message says where a file swapped in for it was kept).
   */
  close(): Promise<void>;
  /**
   * Closes without dropping what is queued: keeps handing connections to the running accept
   * loop until an accept() has waited `idleMs` with nothing to take (the queue is empty), then
   * closes. Closing a SO_REUSEPORT socket outright drops its queue on Linux; this does not. On a
   * view of a shared socket it is `close()`: the other views take the queue. Idempotent.
   *
   * @param options How long the queue must stay empty, and the longest wait.
   */
  drain(options?: DrainOptions): Promise<void>;
  /** The runtime's own listener object, for hand-off to an HTTP server. */
  readonly native: unknown;
}

/** Options of {@linkcode Listener.drain}. */
export interface DrainOptions {
  /**
   * How long an accept() must wait with nothing to take before the queue counts as empty.
   * @default {50}
   */
  idleMs?: number;
  /**
   * The longest drain; then the listener closes whatever is left.
   * @default {10000}
   */
  timeoutMs?: number;
}

/**
 * A bound UDP socket, the same on every runtime (for HTTP/3 and QUIC servers).
 *
 * @example
 * ```ts
 * import { capabilities, createUdpListener } from "../mod.ts";
 * if (capabilities().udp) {
 *   await using udp = await createUdpListener({ port: 0 });
 *   console.assert(udp.addr.transport === "udp");
 * }
 * ```
 */
export interface DatagramListener extends AsyncIterable<[Uint8Array, NetAddr]>, AsyncDisposable {
  /** The bound address. */
  readonly addr: UdpAddr;
  /** Resolves with the next datagram and its sender; rejects with a `ListenError` once closed. */
  receive(): Promise<[Uint8Array, NetAddr]>;
  /**
   * Sends one datagram and resolves with the number of bytes sent, once the OS has taken it.
   * Rejects with the runtime's error when the OS refuses it (its `code`, such as `EMSGSIZE`), or
   * the host name does not resolve; with a `ListenError` (code `ECLOSED`) once closed.
   * @param data The payload.
   * @param to The receiver: an IP address, or a host name to resolve first.
   */
  send(data: Uint8Array, to: NetAddr): Promise<number>;
  /** Releases the socket (or this view of a shared one). Idempotent. */
  close(): Promise<void>;
  /**
   * The runtime's own socket object: a `Deno.DatagramConn`, a node:dgram `Socket` on Node.js,
   * and on Bun a `Bun.udpSocket` socket, or a node:dgram `Socket` where sockets share a port.
   */
  readonly native: unknown;
}

/** The JavaScript runtimes polybind runs on. */
export type Runtime = "deno" | "bun" | "node";

/**
 * What this runtime and OS really support, as found out by binding sockets.
 *
 * @example
 * ```ts
 * import { capabilities } from "../mod.ts";
 * const caps = capabilities();
 * console.assert(["deno", "bun", "node"].includes(caps.runtime));
 * ```
 */
export interface Capabilities {
  /** The runtime. */
  readonly runtime: Runtime;
  /** The runtime's version, such as `"2.9.6"`. */
  readonly version: string;
  /** The OS, as Node names it: `"linux"`, `"darwin"`, `"win32"`, ... */
  readonly os: string;
  /** Whether independent sockets can share one port with the kernel spreading the load. */
  readonly reusePort: { readonly tcp: boolean; readonly udp: boolean };
  /** Whether UDP sockets can be created at all. */
  readonly udp: boolean;
  /** Whether Unix domain sockets can be created. */
  readonly unix: boolean;
  /** Whether the listen backlog can be set (Bun's queue is 512 long whatever the option). */
  readonly backlog: boolean;
  /**
   * Whether a socket can be handed to child processes, which inherit it and listen on it: the
   * parent binds without listening, so it accepts nothing itself (node:cluster's handle
   * passing, on Node.js and Deno; Bun has no such handle).
   */
  readonly processShare: boolean;
  /**
   * Whether the sockets lent to worker processes can be one SO_REUSEPORT socket for each
   * worker, all on one port: the kernel spreads connections over them as over workers' own
   * sockets, and the parent keeps them, so none closes with a worker (Linux, with Node.js 22.12
   * or 23.1 on, Deno or Bun). Elsewhere the workers take from one shared socket.
   */
  readonly lendReusePort: boolean;
  /**
   * Whether the kernel hands the connections queued on a closing SO_REUSEPORT socket to the
   * others on its port (Linux's `net.ipv4.tcp_migrate_req` is 1, read at the probe): only then
   * can a new generation of workers bind beside an old one that closes without resetting any.
   */
  readonly migrateReq: boolean;
}
