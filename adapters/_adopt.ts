// A lent socket served by the runtime's own fetch server (Deno.serve, Bun.serve), which binds
// only sockets of its own (Linux). The server starts on a throwaway socket (loopback port 0, or a
// Unix socket in a private folder); its listening descriptor and that descriptor's epoll
// registration are found in /proc/self; the lent socket is put in the descriptor's place
// (dup2, which closes the throwaway) and registered as it was. The server then accepts from the
// lent socket as from its own. Every fact this relies on is checked first (prepareAdoption):
// where one does not hold, nothing has changed and the caller serves the socket another way.

import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FetchServer, LentSocket } from "../src/_adapter.ts";

/** The C library calls used, as each runtime's FFI binds them (typed arrays for pointers). */
export interface AdoptLibc {
  getsockname(fd: number, addr: Uint8Array, length: Uint32Array): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, length: Uint32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, length: number): number;
  listen(fd: number, backlog: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  dup2(from: number, to: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  close(fd: number): number;
}

// Linux's values.
const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const SOL_SOCKET = 1, SO_TYPE = 3, SO_ACCEPTCONN = 30, SO_DOMAIN = 39, SOCK_STREAM = 1;
const IPPROTO_TCP = 6, TCP_DEFER_ACCEPT = 9, TCP_INFO = 11;
const F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0o4000;
const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;

/** A socket's family and name: its port (TCP) or its path (Unix). */
export interface SocketName {
  readonly family: number;
  readonly port: number;
  readonly path: string;
}

/**
 * Reads a `struct sockaddr` (Linux, little-endian family): the family, the port of an IP one, the
 * path of a Unix one (up to its NUL).
 *
 * @param addr The bytes getsockname wrote.
 * @param length How many it wrote.
 * @returns The name.
 * @example
 * ```ts
 * import { parseSockaddr } from "./_adopt.ts";
 * const addr = new Uint8Array([2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
 * console.assert(parseSockaddr(addr, 16).port === 8080);
 * ```
 */
export function parseSockaddr(addr: Uint8Array, length: number): SocketName {
  const family = addr[0]! | (addr[1]! << 8);
  if (family === AF_INET || family === AF_INET6) return { family, port: (addr[2]! << 8) | addr[3]!, path: "" };
  if (family !== AF_UNIX) return { family, port: 0, path: "" };
  const bytes = addr.subarray(2, Math.min(length, addr.length));
  const end = bytes.indexOf(0, bytes[0] === 0 ? 1 : 0);
  return { family, port: 0, path: new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end)) };
}

/** One registration in an epoll instance, as /proc/self/fdinfo shows it. */
export interface EpollEntry {
  readonly fd: number;
  /** The events, and the token the runtime gets back with them. */
  readonly events: number;
  readonly data: bigint;
  /** The inode of the registered file (for a socket, the number in `socket:[...]`). */
  readonly ino: number;
}

/**
 * The registrations an epoll descriptor's /proc/self/fdinfo text lists (`tfd: 21 events: 19
 * data: 55d0c0 pos:0 ino:4d2 sdev:9`); lines of another form are left out.
 *
 * @param text The fdinfo text.
 * @returns Its registrations.
 * @example
 * ```ts
 * import { parseEpollInfo } from "./_adopt.ts";
 * const [entry] = parseEpollInfo("tfd:       21 events:       19 data:     5a pos:0 ino:4d2 sdev:9\n");
 * console.assert(entry!.fd === 21 && entry!.events === 0x19 && entry!.data === 0x5an && entry!.ino === 0x4d2);
 * ```
 */
export function parseEpollInfo(text: string): EpollEntry[] {
  const entries: EpollEntry[] = [];
  const line = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\s+pos:\s*\d+\s+ino:\s*([0-9a-f]+)/gm;
  for (const m of text.matchAll(line)) {
    entries.push({
      fd: Number(m[1]),
      events: parseInt(m[2]!, 16),
      data: BigInt(`0x${m[3]}`),
      ino: parseInt(m[4]!, 16),
    });
  }
  return entries;
}

/** This process's descriptors and what each is (`socket:[123]`, `anon_inode:[eventpoll]`). */
function descriptors(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      out.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // Closed meanwhile (the descriptor of the listing itself).
    }
  }
  return out;
}

/** An int socket option, or undefined where the call fails. */
function intOption(libc: AdoptLibc, fd: number, level: number, name: number): number | undefined {
  const value = new Int32Array(1), length = new Uint32Array([4]);
  return libc.getsockopt(fd, level, name, new Uint8Array(value.buffer), length) === 0 ? value[0] : undefined;
}

function nameOf(libc: AdoptLibc, fd: number): SocketName | undefined {
  const addr = new Uint8Array(128), length = new Uint32Array([128]);
  return libc.getsockname(fd, addr, length) === 0 ? parseSockaddr(addr, length[0]!) : undefined;
}

/**
 * Checks that `fd` is a socket the runtime's server can accept from: a stream socket (TCP or
 * Unix) that is bound. Returns its name, or why not.
 *
 * @param libc The C library.
 * @param fd The descriptor.
 * @returns Its family and port or path, or why it cannot be adopted.
 * @example
 * ```ts ignore
 * const name = lentName(libc, 3);
 * if (typeof name !== "string" && name.family === FAMILY.unix) console.log(name.path);
 * ```
 */
export function lentName(libc: AdoptLibc, fd: number): SocketName | string {
  if (intOption(libc, fd, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) return `descriptor ${fd} is not a stream socket`;
  const family = intOption(libc, fd, SOL_SOCKET, SO_DOMAIN);
  const name = nameOf(libc, fd);
  if (family === undefined || ![AF_INET, AF_INET6, AF_UNIX].includes(family) || name?.family !== family) {
    return `descriptor ${fd} is not a TCP or Unix socket`;
  }
  if (family === AF_UNIX ? name.path === "" : name.port === 0) return `descriptor ${fd} is not bound`;
  return name;
}

/** The family of a socket: AF_INET, AF_INET6 or AF_UNIX. */
export const FAMILY = { inet: AF_INET, inet6: AF_INET6, unix: AF_UNIX } as const;

/** A throwaway server's socket, found and checked: what commit() needs. */
export interface Adoption {
  /** The descriptor the runtime's server accepts from, now the lent socket's. */
  readonly fd: number;
  /**
   * Connections waiting in the throwaway socket's accept queue (TCP; a Unix one in its private
   * folder has none): a client that found its loopback port. The server accepts them if given a
   * moment; the queue closes with the throwaway socket (resetting them) at commit().
   */
  queued(): number;
  /** Puts the lent socket in the server's place; throws where the kernel refuses (the server then serves nothing). */
  commit(): void;
  /** Stops the server accepting from the lent socket (which stays open: other processes hold it). */
  stopAccepting(): void;
}

/**
 * Finds the listening descriptor of a throwaway server (`throwaway`: its family and port or
 * path) and its one epoll registration, and gets the lent socket `lent` ready to take its place
 * (listening, non-blocking, with the throwaway's TCP_DEFER_ACCEPT): every check done, nothing
 * irreversible yet. Returns why not where a check fails.
 *
 * @param libc The C library.
 * @param arch The CPU architecture (`struct epoll_event` is packed on x86_64 only).
 * @param lent The lent socket's descriptor.
 * @param throwaway The name the throwaway server's socket has.
 * @param backlog The lent socket's backlog.
 * @returns The adoption to commit, or why not.
 * @example
 * ```ts ignore
 * const adoption = prepareAdoption(libc, "x86_64", 3, { family: 2, port: 41234, path: "" }, 511);
 * if (typeof adoption !== "string") adoption.commit();
 * ```
 */
export function prepareAdoption(
  libc: AdoptLibc,
  arch: "x86_64" | "aarch64",
  lent: number,
  throwaway: SocketName,
  backlog: number,
): Adoption | string {
  const lentAs = lentName(libc, lent);
  if (typeof lentAs === "string") return lentAs;
  if (lentAs.family !== throwaway.family) return "the throwaway socket is of another family than the lent one";
  const fds = descriptors();
  // Exactly one descriptor has the throwaway's name (a second copy would keep its port open).
  const named = [...fds].filter(([fd, link]) => {
    if (fd === lent || !link.startsWith("socket:[")) return false;
    const name = nameOf(libc, fd);
    return name?.family === throwaway.family && name.port === throwaway.port && name.path === throwaway.path;
  });
  if (named.length !== 1) return `${named.length} descriptors have the throwaway socket's name`;
  const [target, link] = named[0]!;
  if (intOption(libc, target, SOL_SOCKET, SO_ACCEPTCONN) !== 1) return "the throwaway socket does not listen";
  // Its registration: one epoll instance (maybe under several descriptors, each listing the same).
  const ino = Number(/^socket:\[(\d+)\]$/.exec(link)?.[1]);
  const listings = [...fds].filter(([, l]) => l === "anon_inode:[eventpoll]").map(([fd]) => {
    const entries = parseEpollInfo(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
    return { epfd: fd, entries, mine: entries.filter((e) => e.fd === target && e.ino === ino) };
  }).filter((l) => l.mine.length > 0);
  const key = (l: (typeof listings)[number]) => JSON.stringify(l.entries, (_, v) => typeof v === "bigint" ? `${v}` : v);
  if (listings.length === 0) return "the throwaway socket is in no epoll instance";
  if (listings.some((l) => l.mine.length !== 1 || key(l) !== key(listings[0]!))) {
    return "the throwaway socket is in more than one epoll instance";
  }
  const { events, data } = listings[0]!.mine[0]!;
  // The lent socket as the throwaway was: listening, non-blocking, deferring accept as it did.
  if (libc.listen(lent, backlog) !== 0) return `descriptor ${lent} cannot listen`;
  const flags = libc.fcntl(lent, F_GETFL, 0);
  if (flags < 0 || libc.fcntl(lent, F_SETFL, flags | O_NONBLOCK) !== 0) {
    return `descriptor ${lent} cannot be non-blocking`;
  }
  const defer = throwaway.family === AF_UNIX ? 0 : intOption(libc, target, IPPROTO_TCP, TCP_DEFER_ACCEPT) ?? 0;
  if (defer > 0) {
    libc.setsockopt(lent, IPPROTO_TCP, TCP_DEFER_ACCEPT, new Uint8Array(new Int32Array([defer]).buffer), 4);
  }
  const event = epollEvent(arch, events, data);
  const epfds = listings.map((l) => l.epfd);
  return {
    fd: target,
    queued() {
      if (throwaway.family === AF_UNIX) return 0;
      // struct tcp_info: tcpi_unacked (at byte 24) is a listening socket's accept queue length.
      const info = new Uint8Array(232), length = new Uint32Array([info.length]);
      if (libc.getsockopt(target, IPPROTO_TCP, TCP_INFO, info, length) !== 0 || length[0]! < 28) return 0;
      return new DataView(info.buffer).getUint32(24, true);
    },
    commit() {
      // Atomic: the throwaway closes (its port or path is free) and `target` is the lent socket.
      if (libc.dup2(lent, target) !== target) throw new Error(`dup2 of descriptor ${lent} failed`);
      // The same instance under several descriptors refuses the second add (EEXIST): one is enough.
      if (!epfds.some((epfd) => libc.epoll_ctl(epfd, EPOLL_CTL_ADD, target, event) === 0)) {
        throw new Error(`epoll_ctl refused descriptor ${target}`);
      }
    },
    stopAccepting() {
      for (const epfd of epfds) libc.epoll_ctl(epfd, EPOLL_CTL_DEL, target, epollEvent(arch, 0, 0n));
    },
  };
}

/** A `struct epoll_event`: packed (12 bytes) on x86_64, 16 bytes elsewhere. */
function epollEvent(arch: "x86_64" | "aarch64", events: number, data: bigint): Uint8Array {
  const packed = arch === "x86_64";
  const bytes = new Uint8Array(packed ? 12 : 16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, events >>> 0, true);
  view.setBigUint64(packed ? 4 : 8, data, true);
  return bytes;
}

/** How long a throwaway server is given to accept what is queued on it before it is replaced. */
const QUEUE_WAIT_MS = 100;

/** A runtime's server started on a throwaway socket, before and after it takes the lent one. */
export interface Throwaway {
  /** The port it bound (TCP). */
  readonly port: number;
  /** Stops it (a check failed: it has served nobody, and its socket closes). */
  shutdown(): Promise<void>;
  /** The server as a FetchServer once it accepts from the lent socket; `stopAccepting` stops that. */
  adopted(stopAccepting: () => void): FetchServer;
}

/** Where a throwaway server listens: loopback port 0 of the lent socket's family, or a Unix socket path. */
export type ThrowawayPlace = { readonly hostname: string; readonly port: 0 } | { readonly path: string };

/**
 * Serves the lent `socket` with the runtime's own server: started by `start` on a throwaway
 * socket of the lent one's family, then moved onto the lent socket (see prepareAdoption).
 * Resolves with why not where a check fails: the throwaway is then stopped and removed, the
 * lent socket left as it was (listening at most, and still this process's: it can be served
 * another way). A copy this process made (`owned`) is closed once adopted.
 *
 * @param libc The C library.
 * @param arch The CPU architecture.
 * @param socket The lent socket.
 * @param tls Whether the server does HTTPS (not on a Unix socket: Deno.serve takes no certificate there).
 * @param start Starts the runtime's server at a place; throws where it cannot.
 * @returns The server, or why not.
 * @throws {Error} The kernel refused a call after every check passed: the server serves nothing.
 * @example
 * ```ts ignore
 * const served = await adoptLent(libc, "x86_64", { fd: 3, backlog: 511, owned: false }, false, start);
 * if (typeof served === "string") console.log(`served another way: ${served}`);
 * ```
 */
export async function adoptLent(
  libc: AdoptLibc,
  arch: "x86_64" | "aarch64",
  socket: LentSocket,
  tls: boolean,
  start: (place: ThrowawayPlace) => Throwaway,
): Promise<FetchServer | string> {
  const lent = lentName(libc, socket.fd);
  if (typeof lent === "string") return lent;
  if (tls && lent.family === AF_UNIX) return "a Unix socket is served without HTTPS by the runtime's server";
  // A private folder: nobody else can connect to the throwaway socket in the moment it lives.
  const dir = lent.family === AF_UNIX ? mkdtempSync(join(tmpdir(), "polybind-")) : undefined;
  const place: ThrowawayPlace = dir !== undefined
    ? { path: join(dir, "s") }
    : { hostname: lent.family === AF_INET6 ? "::1" : "127.0.0.1", port: 0 };
  const removeDir = () => dir !== undefined && rmSync(dir, { recursive: true, force: true });
  let throwaway: Throwaway;
  try {
    throwaway = start(place);
  } catch (err) {
    removeDir();
    return `the throwaway server did not start (${(err as Error)?.message ?? err})`;
  }
  const name: SocketName = "path" in place
    ? { family: AF_UNIX, port: 0, path: place.path }
    : { family: lent.family, port: throwaway.port, path: "" };
  const adoption = prepareAdoption(libc, arch, socket.fd, name, socket.backlog);
  if (typeof adoption === "string") {
    await throwaway.shutdown();
    removeDir();
    return adoption;
  }
  // A connection to the throwaway's port is served by it, not reset with it: a moment to accept it.
  for (let wait = 0; adoption.queued() > 0 && wait < QUEUE_WAIT_MS; wait += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  try {
    adoption.commit();
  } catch (err) {
    await throwaway.shutdown();
    throw err;
  } finally {
    removeDir();
  }
  // The server's descriptor is the socket now; this process's copy is not needed.
  if (socket.owned) libc.close(socket.fd);
  return throwaway.adopted(() => adoption.stopAccepting());
}
