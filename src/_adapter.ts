// The primitives a runtime adapter provides, and the one slot that holds the adapter in use.
// The core composes these into listeners; an adapter implements them and decides no policy.

import type { Addr, Conn, NetAddr, Runtime, TcpAddr, UdpAddr } from "./types.ts";

/** A bound stream socket as the runtime gives it; the core adds state, views and cleanup. */
export interface RawListener<A> {
  readonly addr: A;
  /** Next connection; rejects (with anything) once closed. */
  accept(): Promise<Conn>;
  close(): Promise<void>;
  readonly native: unknown;
}

/** A bound UDP socket as the runtime gives it. */
export interface RawDatagram {
  readonly addr: UdpAddr;
  /** Next datagram; rejects (with anything) once closed. */
  receive(): Promise<[Uint8Array, NetAddr]>;
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

/** One runtime's bind primitives and the facts it can find out about itself. */
export interface Adapter {
  readonly runtime: Runtime;
  readonly version: string;
  readonly os: string;
  /** Binds a TCP listener. `reusePort` is only ever true where `reusePortBinds("tcp")` is. */
  listenTcp(
    opts: { hostname: string; port: number; backlog: number; reusePort: boolean },
  ): Promise<RawListener<TcpAddr>>;
  /**
   * Binds a Unix socket listener at `path` (which the core has made free). Its connections name
   * `name` as their local address when given: the public path of a socket bound at a private
   * one and then linked into place.
   */
  listenUnix(
    opts: { path: string; backlog: number; name?: string },
  ): Promise<RawListener<{ transport: "unix"; path: string }>>;
  /** Binds a UDP socket. `reusePort` is only ever true where `reusePortBinds("udp")` is. */
  listenUdp(opts: { hostname: string; port: number; reusePort: boolean }): Promise<RawDatagram>;
  /** Listens on an inherited, bound descriptor (TCP or Unix). */
  listenFd(opts: { fd: number; backlog: number }): Promise<RawListener<Addr>>;
  /** This process's id and environment (for systemd socket activation). */
  readonly pid: number;
  env(name: string): string | undefined;
  /** Resolves a host name to IP addresses, in the order the OS prefers. */
  lookup(host: string): Promise<string[]>;
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
  readonly fs: UnixFs;
  /** The option names of a host and a Unix socket path in the runtime's own HTTP server. */
  readonly serveKeys: { readonly host: "host" | "hostname"; readonly path: "path" | "unix" };
  /** Passing a listening socket to child processes, where the runtime can (Node.js IPC). */
  readonly handOff?: HandOff;
}

/** A socket bound (or inherited) but not accepting, to be handed to child processes. */
export interface PassableSocket {
  readonly addr: Addr;
  readonly native: unknown;
  close(): Promise<void>;
}

/** Passes a socket to child processes, which ask for it by key and listen on it. */
export interface HandOff {
  /** In the parent: binds without listening (or takes an inherited descriptor), so the parent accepts nothing. */
  bind(target: { hostname: string; port: number } | { path: string } | { fd: number }): Promise<PassableSocket>;
  /** In the parent: sends `socket` to `child` (a ChildProcess with IPC) when it asks for `key`. */
  offer(child: unknown, key: string, socket: PassableSocket, backlog: number): void;
  /** In the child: asks the parent for the socket `key` and waits for it, at most `timeoutMs`. */
  receive(key: string, timeoutMs: number): Promise<RawListener<Addr>>;
}

let current: Adapter | undefined;

/** Installs the adapter the public functions use (the probe does this at import time). */
export function useAdapter(adapter: Adapter): void {
  current = adapter;
}

/** The adapter in use. */
export function adapter(): Adapter {
  if (current === undefined) {
    throw new Error("No runtime adapter is installed: import polybind from its entry point mod.ts");
  }
  return current;
}
