// Lending a socket from a Bun parent to its child processes, which inherit it as a descriptor:
// Bun has neither node:net's bound handle nor a way to stop a listening server from accepting,
// so the parent makes the socket with the C library's own calls (bun:ffi, on Linux): bound, not
// listening, it accepts nothing. Each child is started with it and listens on it.

import process from "node:process";
import { getSystemErrorName } from "node:util";
import type { ShareableSocket, SocketShare } from "../src/_adapter.ts";
import { parseSockaddr } from "./_adopt_libc.ts";
import type { Addr } from "../src/types.ts";

/** The few libc calls used, as bun:ffi binds them. */
interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, length: number): number;
  bind(fd: number, addr: Uint8Array, length: number): number;
  getsockname(fd: number, addr: Uint8Array, length: Uint32Array): number;
  inet_pton(family: number, text: Uint8Array, out: Uint8Array): number;
  close(fd: number): number;
  fcntl(fd: number, command: number, argument: number): number;
  __errno_location(): number;
}

/** bun:ffi's module, as much of it as is used. */
interface BunFfi {
  dlopen(name: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: unknown };
  read: { i32(pointer: number, offset?: number): number };
}

// Linux's values (the same on every architecture Bun runs on).
const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const SOCK_STREAM = 1, SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_REUSEPORT = 15;
const F_DUPFD_CLOEXEC = 1030;

const SYMBOLS = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  inet_pton: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
};

/** The C library, bound once; undefined off Linux or where it cannot be opened. */
async function openLibc(): Promise<{ libc: Libc; ffi: BunFfi } | undefined> {
  if (process.platform !== "linux") return undefined;
  try {
    const ffi = await import(["bun", "ffi"].join(":")) as BunFfi;
    for (const name of ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]) {
      try {
        return { libc: ffi.dlopen(name, SYMBOLS).symbols as Libc, ffi };
      } catch {
        // The next name.
      }
    }
  } catch {
    // No bun:ffi.
  }
  return undefined;
}

const opened = await openLibc();

/** The error of the last failed call, as node: modules throw it. */
function lastError(syscall: string): Error {
  const errno = opened!.ffi.read.i32(opened!.libc.__errno_location());
  // An errno already reset (0) would make getSystemErrorName throw and hide the failure.
  const code = errno > 0 ? getSystemErrorName(-errno) : "EIO";
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -errno, syscall });
}

function cString(text: string): Uint8Array {
  return new TextEncoder().encode(text + "\0");
}

/** A sockaddr for an IP address and port, or undefined where `hostname` is not one. */
function inetAddress(libc: Libc, hostname: string, port: number): Uint8Array | undefined {
  const v6 = hostname.includes(":");
  const addr = new Uint8Array(v6 ? 28 : 16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  view.setUint16(2, port, false);
  const ip = new Uint8Array(v6 ? 16 : 4);
  if (libc.inet_pton(v6 ? AF_INET6 : AF_INET, cString(hostname.replace(/%.*$/, "")), ip) !== 1) return undefined;
  addr.set(ip, v6 ? 8 : 4);
  return addr;
}

/** A sockaddr_un for `path` (a leading NUL: an abstract name). */
function unixAddress(path: string): Uint8Array {
  const bytes = new TextEncoder().encode(path);
  const addr = new Uint8Array(2 + bytes.length + (path.startsWith("\0") ? 0 : 1));
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return addr;
}

/** Where socket `fd` is bound: an IP address and port, or undefined for a Unix socket. */
function boundAddr(libc: Libc, fd: number): { hostname: string; port: number } | undefined {
  const addr = new Uint8Array(128);
  const length = new Uint32Array([addr.length]);
  if (libc.getsockname(fd, addr, length) !== 0) throw lastError("getsockname");
  const { host, port } = parseSockaddr(addr, length[0]!);
  return host === undefined ? undefined : { hostname: host, port };
}

/** A socket bound at `addr` (with SO_REUSEPORT where asked), not listening; closed again when anything fails. */
function bindSocket(libc: Libc, family: number, addr: Uint8Array, reusePort = false): number {
  const fd = libc.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw lastError("socket");
  try {
    const on = new Uint8Array(new Int32Array([1]).buffer);
    for (const option of family === AF_UNIX ? [] : reusePort ? [SO_REUSEADDR, SO_REUSEPORT] : [SO_REUSEADDR]) {
      if (libc.setsockopt(fd, SOL_SOCKET, option, on, 4) !== 0) throw lastError("setsockopt");
    }
    if (libc.bind(fd, addr, addr.length) !== 0) throw lastError("bind");
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

function shareable(libc: Libc, fd: number, addr: Addr, owned: boolean): ShareableSocket {
  let closed: Promise<void> | undefined;
  return {
    addr,
    native: fd,
    fd,
    close: () => closed ??= Promise.resolve().then(() => void (owned && libc.close(fd))),
  };
}

/** Lending sockets to Bun child processes by inheritance, where the C library can be called (Linux). */
export const bunShare: SocketShare | undefined = opened === undefined ? undefined : {
  via: "inherit",
  reusePort: true,
  bind(target) {
    const { libc } = opened;
    return new Promise((resolve) => {
      // Thrown errors reject this promise.
      if ("fd" in target) {
        const at = boundAddr(libc, target.fd);
        const addr: Addr = at ? { transport: "tcp", ...at } : { transport: "unix", path: `fd://${target.fd}` };
        resolve(shareable(libc, target.fd, addr, true));
      } else if ("path" in target) {
        const fd = bindSocket(libc, AF_UNIX, unixAddress(target.path));
        resolve(shareable(libc, fd, { transport: "unix", path: target.path }, true));
      } else {
        const sockaddr = inetAddress(libc, target.hostname, target.port);
        if (sockaddr === undefined) {
          throw Object.assign(new Error(`bind EINVAL: not an IP address: ${target.hostname}`), { code: "EINVAL" });
        }
        const family = target.hostname.includes(":") ? AF_INET6 : AF_INET;
        const fd = bindSocket(libc, family, sockaddr, target.reusePort === true);
        resolve(
          shareable(libc, fd, { transport: "tcp", hostname: target.hostname, port: boundAddr(libc, fd)!.port }, true),
        );
      }
    });
  },
  duplicate(fds) {
    const { libc } = opened;
    const copies: number[] = [];
    for (const fd of fds) {
      const copy = libc.fcntl(fd, F_DUPFD_CLOEXEC, 3);
      if (copy >= 0) copies.push(copy);
      else {
        const err = lastError("fcntl");
        for (const made of copies) libc.close(made);
        throw err;
      }
    }
    return copies;
  },
};
