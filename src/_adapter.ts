// The adapter contract: the bind primitives a runtime provides and the facts it can find out
// about itself, nothing more. The core composes these into listeners and connections; an
// adapter implements them and decides no policy. Also the slot that holds the adapter in use,
// which a caller (a test) can override for the calls it makes, without touching anyone else's.

import { AsyncLocalStorage } from "node:async_hooks";
import type { FetchInfo } from "./worker.ts";
import type { Addr, NetAddr, Runtime, TcpAddr, UdpAddr } from "./types.ts";

/**
 * A connection as the runtime gives it: the minimum the core builds a `Conn` on (see _conn.ts,
 * which owns the rest of a Conn's behaviour, the same on every runtime).
 */
export interface RawConn {
  readonly native: unknown;
  /** The local end's IP address and port (Unix connections are named by the core). */
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /**
   * Reads into `p`: the number of bytes, or `null` at end of stream, also once the peer has
   * gone (closed or reset, before or after accept). Never rejects for a gone peer.
   */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes all of `p` and resolves with its length once the runtime has taken it. */
  write(p: Uint8Array): Promise<number>;
  /** Sends end-of-stream; reading goes on. */
  closeWrite(): Promise<void>;
  /** Closes at once. */
  close(): void;
  setNoDelay(on: boolean): void;
  setKeepAlive(on: boolean): void;
  /**
   * The incoming bytes as a stream source, the runtime's fastest way (pushed on Node.js and
   * Bun, pulled on Deno), ending as `read()` does; `cancel` closes the connection.
   */
  source(): { readonly source: UnderlyingDefaultSource<Uint8Array>; readonly highWaterMark: number };
  /**
   * Gives `native` (a `node:stream` Duplex) back to a reader of its own, such as an http.Server:
   * `first`, then what was read and not taken, are its first bytes. Only where `native` is one.
   */
  release?(first?: Uint8Array): void;
}

/** A bound stream socket as the runtime gives it; the core adds state, views and cleanup. */
export interface RawListener<A extends Addr = Addr> {
  readonly addr: A;
  /** Next connection; rejects (with anything) once closed. */
  accept(): Promise<RawConn>;
  /**
   * accept() with callbacks, no promise: `ok` with the next connection (at once, before this
   * returns, where one is queued), or `fail` once closed. Optional: where an adapter has it, a
   * listener's one consumer (the PROXY protocol's) accepts with no promise a connection.
   */
  acceptWith?(ok: (conn: RawConn) => void, fail: (err: unknown) => void): void;
  /** Stops accepting; resolves once the port or path is free. */
  close(): Promise<void>;
  readonly native: unknown;
}

/** A bound UDP socket as the runtime gives it. */
export interface RawDatagram {
  readonly addr: UdpAddr;
  /** Next datagram; rejects (with anything) once closed. */
  receive(): Promise<[Uint8Array, NetAddr]>;
  /**
   * Next datagram as an iterator result, done once close() has been called (rejecting if the
   * socket closed otherwise). Optional: where an adapter has it, a sole listener on the socket
   * iterates with one promise a datagram instead of receive()'s and a then()'s.
   */
  step?(): Promise<IteratorResult<[Uint8Array, NetAddr], undefined>>;
  send(data: Uint8Array, to: NetAddr): Promise<number>;
  close(): Promise<void>;
  readonly native: unknown;
}

/** What `lstat` says of a path, without following links. */
export interface PathInfo {
  readonly kind: "socket" | "file" | "directory" | "symlink" | "other";
  /** Inode and device, to tell one socket file from another. */
  readonly ino: number;
  readonly dev: number;
}

/** File-system and connect primitives needed to manage Unix socket files safely. */
export interface UnixFs {
  lstat(path: string): Promise<PathInfo | null>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Hard link; fails with EEXIST when `to` exists (an atomic no-replace). */
  link(from: string, to: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** Creates a fresh folder `prefix` + random characters, mode 0o700, and returns its path. */
  mkdtemp(prefix: string): Promise<string>;
  rmdir(path: string): Promise<void>;
  /** Connects to a Unix socket: `"live"` if accepted, `"refused"` if nobody listens. */
  knock(path: string): Promise<"live" | "refused">;
  /** An absolute form of `path`. */
  resolve(path: string): string;
}

/** The POSIX pieces every runtime provides alike (through its node: modules): one object. */
export interface Platform {
  /** This process's id (for systemd socket activation). */
  readonly pid: number;
  /** Its parent's id (for sockets a predecessor handed over). */
  readonly ppid: number;
  env(name: string): string | undefined;
  /** Resolves a host name to IP addresses, in the order the OS prefers. */
  lookup(host: string): Promise<string[]>;
  readonly fs: UnixFs;
  /** The text of a file, or null where it cannot be read (such as `/proc/net/tcp` off Linux). */
  readText(path: string): Promise<string | null>;
  /** The same, read synchronously (a small file, such as a sysctl under /proc/sys). */
  readTextSync(path: string): string | null;
}

/** One runtime's bind primitives and the facts it can find out about itself. */
export interface Adapter {
  readonly runtime: Runtime;
  readonly version: string;
  readonly os: string;
  /** Binds a TCP listener. `reusePort` is only ever true where the probe found it works. */
  listenTcp(
    opts: { hostname: string; port: number; backlog: number; reusePort: boolean },
  ): Promise<RawListener<TcpAddr>>;
  /** Binds a Unix socket listener at `path` (which the core has made free). */
  listenUnix(opts: { path: string; backlog: number }): Promise<RawListener>;
  /** Binds a UDP socket. `reusePort` is only ever true where the probe found it works. */
  listenUdp(opts: { hostname: string; port: number; reusePort: boolean }): Promise<RawDatagram>;
  /** Listens on an inherited, bound descriptor (TCP or Unix). */
  listenFd(opts: { fd: number; backlog: number }): Promise<RawListener>;
  /**
   * Whether a second socket really binds the port of a first one with reusePort, found out
   * without blocking the event loop.
   */
  probeReusePort(transport: "tcp" | "udp"): Promise<boolean>;
  /**
   * The same, answered synchronously (cached): may block where binding is asynchronous (a child
   * process on Node.js), so it serves only a capabilities() asked before any async probe.
   */
  reusePortBinds(transport: "tcp" | "udp"): boolean;
  /** Whether UDP sockets can be made at all; else `missing("udp")` says why. */
  readonly udp: boolean;
  readonly unix: boolean;
  readonly backlog: boolean;
  /** A sentence saying what is needed to get `feature` on this runtime, for error messages. */
  missing(feature: "udp" | "reusePort.tcp" | "reusePort.udp"): string;
  readonly platform: Platform;
  /** The option names of a host and a Unix socket path in the runtime's own HTTP server. */
  readonly serveKeys: { readonly host: "host" | "hostname"; readonly path: "path" | "unix" };
  /** Lends a listening socket to child processes, where the runtime can (Node.js IPC). */
  readonly share?: SocketShare;
  /** The runtime's own HTTP server for fetch handlers, where it has one (Deno.serve, Bun.serve). */
  readonly fetchServer?: FetchServerStart;
  /** The same server on a lent socket, where the runtime's server can be made to take one (Linux, FFI). */
  readonly adoptFetchServer?: FetchServerAdopt;
  /** How to start a worker process of this runtime. */
  readonly workerProcess: WorkerProcess;
}

/**
 * A fetch handler as the runtime's own server calls it. It may throw or reject: the server
 * answers that with its {@linkcode FetchErrorHandler}.
 */
export type FetchHandler = (request: Request, info: FetchInfo) => Response | Promise<Response>;

/**
 * The answer to what a {@linkcode FetchHandler} threw or rejected with, given by the server that
 * called it (Bun.serve's `error`, Deno.serve's `onError`, node:http's path alike): a `try` around
 * every request costs Bun.serve 1–2 % of a small one. Without one, the runtime's own answer.
 */
export type FetchErrorHandler = (error: unknown) => Response;

/** A running native fetch server. */
export interface FetchServer {
  /** Stops accepting; requests in flight go on (and idle keep-alive connections may close). */
  stopAccepting(): Promise<void>;
  /** Requests in flight now. */
  readonly pending: number;
  /**
   * Once `pending` has stayed at 0: waits for what it does not count (bodies still streaming)
   * and closes the idle connections. Where there is none, the drain goes to close().
   */
  finish?(): Promise<void>;
  /** Closes every connection at once. */
  close(): Promise<void>;
}

/** Starts the runtime's own server on options from serveTargets(); resolves once it listens. */
export type FetchServerStart = (
  options: Record<string, unknown>,
  handler: FetchHandler,
  onError?: FetchErrorHandler,
) => Promise<FetchServer>;

/** A lent socket as a worker has it: its descriptor here, and whether the worker made that copy. */
export interface LentSocket {
  readonly fd: number;
  readonly backlog: number;
  /**
   * A copy made for this worker (received over IPC, or a worker thread's copy of its primary's):
   * the server closes it once it has adopted the socket.
   */
  readonly owned: boolean;
  /**
   * Other threads of this process may serve the same socket: a supervisor's worker threads, each
   * generation of a slot taking it while the one before still drains. Set only there.
   */
  readonly sharedHere?: boolean;
}

/**
 * Starts the runtime's own server on a lent socket, with `options` (`tls: { cert, key }` or
 * none); resolves with the server, or with why it cannot be (a check failed: the socket is as
 * it was, listening at most, and can be served another way, with listenFd). Never rejects: whatever
 * fails after the runtime's server started (a check, /proc, the kernel) stops that server and resolves with why.
 */
export type FetchServerAdopt = (
  socket: LentSocket,
  options: Record<string, unknown>,
  handler: FetchHandler,
  onError?: FetchErrorHandler,
) => Promise<AdoptedServer | string>;

/** The runtime's own server on a lent socket, and where that socket is bound. */
export interface AdoptedServer extends FetchServer {
  readonly addr: Addr;
}

/** How a worker process of this runtime starts. */
export interface WorkerProcess {
  /** The runtime's executable and the flags before the script that a new process of it needs. */
  command(): [string, string[]];
  /**
   * Whether such a process binds SO_REUSEPORT sockets even where this one cannot (Deno starts
   * its workers with --unstable-net), so that a plan for them may be `reuseport`.
   */
  readonly reusePort: boolean;
  /** Whether the process gets an IPC channel (node:child_process fork), over which sockets are lent. */
  readonly ipc: boolean;
  /**
   * Environment variables the runtime reads in a worker that accepts from a socket lent to
   * several (libuv's UV_TCP_SINGLE_ACCEPT: one connection per turn, so that kept-alive
   * connections spread over the workers rather than pile on the one that woke first).
   */
  readonly sharedAcceptEnv?: Readonly<Record<string, string>>;
}

/** A socket bound (or inherited) but not accepting, to be lent to child processes. */
export interface ShareableSocket {
  readonly addr: Addr;
  readonly native: unknown;
  /** Its descriptor in this process, which a child started with it inherits (where the runtime tells it). */
  readonly fd?: number;
  close(): Promise<void>;
}

/**
 * Lends a socket to child processes: over IPC, where a child asks for it by key (Node.js, Deno),
 * or by inheritance, a child being started with its descriptor (Bun).
 */
export interface SocketShare {
  readonly via: "ipc" | "inherit";
  /**
   * Whether `bind` can make a SO_REUSEPORT socket (`reusePort: true`): one for each worker, all
   * on one port, which the kernel balances once the workers listen on them.
   */
  readonly reusePort: boolean;
  /** In the parent: binds without listening (or takes an inherited descriptor), so the parent accepts nothing. */
  bind(
    target: { hostname: string; port: number; reusePort?: boolean } | { path: string } | { fd: number },
  ): Promise<ShareableSocket>;
  /** In the parent (IPC): sends `socket` to `child` (a ChildProcess with IPC) when it asks for `key`. */
  offer?(child: unknown, key: string, socket: ShareableSocket, backlog: number): void;
  /** In the child (IPC): asks the parent for the socket `key` and waits for it, at most `timeoutMs`. */
  receive?(key: string, timeoutMs: number): Promise<RawListener>;
  /**
   * In the child (IPC): the same, as a descriptor of this process that nothing listens on yet
   * (a copy: the caller closes it), where the runtime tells one.
   */
  receiveDescriptor?(key: string, timeoutMs: number): Promise<number>;
  /**
   * In the parent, once a child was started with descriptor `fd` of a socket bound here: puts
   * the socket back in non-blocking mode where the runtime's spawn cleared it (Deno's does; the
   * flag is the socket's, shared by every process it is lent to).
   */
  restoreNonBlocking?(fd: number): void;
  /**
   * In a worker thread of the parent: copies of the parent's descriptors `fds` (closed on exec),
   * for the thread to serve and close as its own; all or none (throws). Where the runtime has
   * it, lent sockets are served by worker threads (their parent's descriptors are their own).
   */
  duplicate?(fds: readonly number[]): number[];
}

let current: Adapter | undefined;
/**
 * Made by the first withAdapter() (tests): on Bun, constructing an AsyncLocalStorage turns on
 * async context tracking for the whole process, which a server that never asks should not pay.
 */
let scoped: AsyncLocalStorage<Adapter> | undefined;

/** Installs the adapter the public functions use (the probe does this at import time). */
export function useAdapter(adapter: Adapter): void {
  current = adapter;
}

/**
 * Runs `fn` with `adapter` in use for every polybind call it makes (and the calls those make),
 * leaving every other caller's adapter alone: how tests inject faults.
 */
export function withAdapter<T>(adapter: Adapter, fn: () => T): T {
  scoped ??= new AsyncLocalStorage<Adapter>();
  return scoped.run(adapter, fn);
}

/** The adapter in use. */
export function adapter(): Adapter {
  const a = scoped?.getStore() ?? current;
  if (a === undefined) {
    throw new Error("No runtime adapter is installed: import polybind from its entry point mod.ts");
  }
  return a;
}
