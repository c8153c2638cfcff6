// A lent socket served by the runtime's own fetch server (Deno.serve, Bun.serve), which binds
// only sockets of its own (Linux). The server starts on a throwaway socket (loopback port 0, or a
// Unix socket in a private folder); its listening descriptor and that descriptor's epoll
// registration are found in /proc/self; the lent socket is put in the descriptor's place
// (dup3, which closes the throwaway) and registered as it was. The server then accepts from the
// lent socket as from its own. Every fact this relies on is checked first (prepareAdoption):
// where one does not hold, nothing has changed and the caller serves the socket another way.

import { mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AdoptedServer, FetchServer, LentSocket } from "../src/_adapter.ts";
import type { Addr } from "../src/types.ts";
import { type AdoptLibc, failure, FAMILY, intOption, lentName, nameOf, type SocketName } from "./_adopt_libc.ts";
import { descriptors, isRegistered, isSocket, parseEpollInfo, socketInode } from "./_proc_self.ts";

// Linux's values.
const SOL_SOCKET = 1, SO_ACCEPTCONN = 30;
const IPPROTO_TCP = 6, TCP_DEFER_ACCEPT = 9, TCP_INFO = 11;
const F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLLIN = 0x1, EPOLLONESHOT = 1 << 30;

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
  /**
   * Puts the lent socket in the server's place, once the throwaway's descriptor and registration
   * are checked again (a descriptor number can be reused meanwhile). Returns why not where a
   * check or the kernel refuses: the lent descriptor is then untouched, and the server, stopped,
   * closes at most its own copy.
   */
  commit(): string | undefined;
  /**
   * Stops the server accepting from the lent socket (which stays open: other processes hold it),
   * once: only while the descriptor is still the lent socket, registered as commit() left it.
   */
  stopAccepting(): void;
}

/**
 * Finds the listening descriptor of a throwaway server (`throwaway`: its family and port or
 * path) and its one epoll registration, and gets the lent socket `lent` ready to take its place
 * (listening, non-blocking, with the throwaway's TCP_DEFER_ACCEPT): every check done, nothing
 * irreversible yet. Returns why not where a check fails; throws where /proc cannot be read.
 *
 * @param libc The C library.
 * @param arch The CPU architecture (`struct epoll_event` is packed on x86_64 only).
 * @param lent The lent socket's descriptor.
 * @param throwaway The name the throwaway server's socket has.
 * @param backlog The lent socket's backlog.
 * @param sharedHere Other threads of this process may serve the lent socket (LentSocket.sharedHere).
 * @returns The adoption to commit, or why not.
 * @throws {Error} /proc/self could not be read (hidepid, a descriptor closed while it was read).
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
  sharedHere = false,
): Adoption | string {
  const lentAs = lentName(libc, lent);
  if (typeof lentAs === "string") return lentAs;
  if (lentAs.family !== throwaway.family) return "the throwaway socket is of another family than the lent one";
  const lentIno = socketInode(readlinkSync(`/proc/self/fd/${lent}`));
  if (lentIno === undefined) return `descriptor ${lent} is not a socket`;
  const fds = descriptors();
  // Exactly one descriptor has the throwaway's name (a second copy would keep its port open).
  const named = [...fds].filter(([fd, link]) => {
    if (fd === lent || !link.startsWith("socket:[")) return false;
    const name = nameOf(libc, fd);
    return name?.family === throwaway.family && name.port === throwaway.port && name.path === throwaway.path;
  });
  if (named.length !== 1) return `${named.length} descriptors have the throwaway socket's name`;
  const [target, link] = named[0]!;
  const ino = socketInode(link);
  if (ino === undefined) return "the throwaway socket's descriptor is not a socket";
  if (intOption(libc, target, SOL_SOCKET, SO_ACCEPTCONN) !== 1) return "the throwaway socket does not listen";
  const epolls = [...fds].filter(([, l]) => l === "anon_inode:[eventpoll]").map(([epfd]) => {
    return { epfd, entries: parseEpollInfo(readFileSync(`/proc/self/fdinfo/${epfd}`, "utf8")) };
  });
  // A socket a server here already accepts from is that server's: never taken from it (unless
  // lent to this process's threads, whose servers share it as worker processes would).
  if (!sharedHere && epolls.some((l) => l.entries.some((e) => e.ino === lentIno))) {
    return `descriptor ${lent} is already served in this process`;
  }
  // Its registration: one epoll instance (maybe under several descriptors: kcmp tells they are one).
  const listings = epolls.map((l) => ({ ...l, mine: l.entries.filter((e) => e.fd === target && e.ino === ino) }))
    .filter((l) => l.mine.length > 0);
  if (listings.length === 0) return "the throwaway socket is in no epoll instance";
  if (listings.some((l) => l.mine.length !== 1 || libc.sameFile(listings[0]!.epfd, l.epfd) !== 0)) {
    return "the throwaway socket is in more than one epoll instance";
  }
  const { epfd } = listings[0]!;
  const { events, data } = listings[0]!.mine[0]!;
  if ((events & EPOLLIN) === 0 || (events & EPOLLONESHOT) !== 0) {
    return `the throwaway socket's epoll events (0x${events.toString(16)}) lack EPOLLIN or have EPOLLONESHOT`;
  }
  // The lent socket as the throwaway was: listening, non-blocking, deferring accept as it did.
  if (libc.listen(lent, backlog) !== 0) return failure(libc, `descriptor ${lent} cannot listen`);
  const flags = libc.fcntl(lent, F_GETFL, 0);
  if (flags < 0 || libc.fcntl(lent, F_SETFL, flags | O_NONBLOCK) !== 0) {
    return failure(libc, `descriptor ${lent} cannot be non-blocking`);
  }
  const defer = throwaway.family === FAMILY.unix ? 0 : intOption(libc, target, IPPROTO_TCP, TCP_DEFER_ACCEPT) ?? 0;
  if (defer > 0) {
    libc.setsockopt(lent, IPPROTO_TCP, TCP_DEFER_ACCEPT, new Uint8Array(new Int32Array([defer]).buffer), 4);
  }
  let accepting = false;
  return {
    fd: target,
    queued() {
      if (throwaway.family === FAMILY.unix) return 0;
      // struct tcp_info: tcpi_unacked (at byte 24) is a listening socket's accept queue length.
      const info = new Uint8Array(232), length = new Uint32Array([info.length]);
      if (libc.getsockopt(target, IPPROTO_TCP, TCP_INFO, info, length) !== 0 || length[0]! < 28) return 0;
      return new DataView(info.buffer).getUint32(24, true);
    },
    commit() {
      // The numbers checked may have been closed and reused while the throwaway was given its moment.
      if (!isSocket(target, ino) || !isRegistered(epfd, target, ino, data, events)) {
        return "the throwaway socket's descriptor or registration changed before it was replaced";
      }
      // Atomic: the throwaway closes (its port or path is free) and `target` is the lent socket,
      // closed on exec as the throwaway was (dup2 would clear that: children would inherit it).
      if (libc.dup3(lent, target, O_CLOEXEC) !== target) return failure(libc, `dup3 of descriptor ${lent} failed`);
      if (libc.epoll_ctl(epfd, EPOLL_CTL_ADD, target, epollEvent(arch, events, data)) !== 0) {
        return failure(libc, `epoll_ctl refused descriptor ${target}`);
      }
      accepting = true;
      return undefined;
    },
    stopAccepting() {
      if (!accepting) return;
      accepting = false;
      if (isSocket(target, lentIno) && isRegistered(epfd, target, lentIno, data)) {
        libc.epoll_ctl(epfd, EPOLL_CTL_DEL, target, epollEvent(arch, 0, 0n));
      }
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
 * Resolves with why not where anything fails, never rejects: the throwaway is then stopped and
 * its folder removed, the lent descriptor left as it was (listening at most, and still this
 * process's: it can be served another way). A copy this process made (`owned`) is closed once
 * adopted, and kept where it was not (what serves it then needs it).
 *
 * @param libc The C library.
 * @param arch The CPU architecture.
 * @param socket The lent socket.
 * @param tls Whether the server does HTTPS (not on a Unix socket: Deno.serve takes no certificate there).
 * @param start Starts the runtime's server at a place; throws where it cannot.
 * @returns The server, or why not.
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
): Promise<AdoptedServer | string> {
  let dir: string | undefined;
  let throwaway: Throwaway | undefined;
  let adopted = false;
  try {
    const lent = lentName(libc, socket.fd);
    if (typeof lent === "string") return lent;
    if (tls && lent.family === FAMILY.unix) return "a Unix socket is served without HTTPS by the runtime's server";
    // A private folder: nobody else can connect to the throwaway socket in the moment it lives.
    if (lent.family === FAMILY.unix) dir = mkdtempSync(join(tmpdir(), "polybind-"));
    const place: ThrowawayPlace = dir !== undefined
      ? { path: join(dir, "s") }
      : { hostname: lent.family === FAMILY.inet6 ? "::1" : "127.0.0.1", port: 0 };
    try {
      throwaway = start(place);
    } catch (err) {
      return `the throwaway server did not start (${(err as Error)?.message ?? err})`;
    }
    const name: SocketName = "path" in place
      ? { family: FAMILY.unix, port: 0, path: place.path }
      : { family: lent.family, port: throwaway.port, path: "" };
    const adoption = prepareAdoption(libc, arch, socket.fd, name, socket.backlog, socket.sharedHere);
    if (typeof adoption === "string") return adoption;
    // A connection to the throwaway's port is served by it, not reset with it: a moment to accept it.
    for (let wait = 0; adoption.queued() > 0 && wait < QUEUE_WAIT_MS; wait += 5) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const refused = adoption.commit();
    if (refused !== undefined) return refused;
    adopted = true;
    // The server's descriptor is the socket now; this process's copy is not needed.
    if (socket.owned) libc.close(socket.fd);
    let open = true;
    const server = throwaway.adopted(() => open && adoption.stopAccepting());
    const addr: Addr = lent.family === FAMILY.unix
      ? { transport: "unix", path: lent.path }
      : { transport: "tcp", hostname: lent.host ?? "", port: lent.port };
    return {
      addr,
      stopAccepting: () => server.stopAccepting(),
      get pending() {
        return server.pending;
      },
      // Once finished or closed, the descriptor number may be another's: stopAccepting leaves it alone.
      finish: () => {
        open = false;
        return server.finish ? server.finish() : server.close();
      },
      close: () => {
        open = false;
        return server.close();
      },
    };
  } catch (err) {
    return `adoption failed (${(err as Error)?.message ?? err})`;
  } finally {
    if (!adopted) await throwaway?.shutdown().catch(() => {});
    try {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    } catch {
      // A folder that cannot be removed leaves nothing listening: the server is gone or has moved.
    }
  }
}
