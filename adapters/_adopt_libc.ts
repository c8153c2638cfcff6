// The C library as adoption calls it (adapters/_adopt.ts), through either runtime's FFI: the
// calls and how each FFI binds them, errno, and what a socket descriptor is (its type, family and
// name), read with getsockopt and getsockname. Linux's values.

import { getSystemErrorName } from "node:util";
import { formatIPv4, formatIPv6 } from "../src/_proxy_ip.ts";

const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const SOL_SOCKET = 1, SO_TYPE = 3, SO_DOMAIN = 39, SOCK_STREAM = 1;

/** The C library calls used, as each runtime's FFI binds them (typed arrays for pointers). */
export interface AdoptLibc {
  getsockname(fd: number, addr: Uint8Array, length: Uint32Array): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, length: Uint32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, length: number): number;
  listen(fd: number, backlog: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  dup3(from: number, to: number, flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  close(fd: number): number;
  /** kcmp(getpid(), getpid(), KCMP_FILE, a, b): 0 where both descriptors are one open file, -1 where the call fails. */
  sameFile(a: number, b: number): number;
  /** The errno of the last call that failed. */
  errno(): number;
}

/** The C library's calls made here, as `[parameters, result]` ("ptr": a pointer), for either runtime's FFI. */
export const LIBC_CALLS = {
  getsockname: [["i32", "ptr", "ptr"], "i32"],
  getsockopt: [["i32", "i32", "i32", "ptr", "ptr"], "i32"],
  setsockopt: [["i32", "i32", "i32", "ptr", "u32"], "i32"],
  listen: [["i32", "i32"], "i32"],
  fcntl: [["i32", "i32", "i32"], "i32"],
  dup3: [["i32", "i32", "i32"], "i32"],
  epoll_ctl: [["i32", "i32", "i32", "ptr"], "i32"],
  close: [["i32"], "i32"],
  syscall: [["i64", "i64", "i64", "i64", "i64", "i64"], "i64"],
  __errno_location: [[], "ptr"],
} as const;

/** The calls of LIBC_CALLS as an FFI binds them: AdoptLibc's plain ones, syscall, __errno_location. */
export type BoundLibc<P> = Omit<AdoptLibc, "sameFile" | "errno"> & {
  syscall(n: bigint, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint): bigint | number;
  __errno_location(): P;
};

/** kcmp's number (x86_64, aarch64), and KCMP_FILE. */
const SYS_KCMP = { x86_64: 312n, aarch64: 272n }, KCMP_FILE = 0n;

/**
 * Opens the C library (glibc, else musl) through one runtime's FFI and completes its calls with
 * `sameFile` (kcmp through syscall) and `errno`.
 *
 * @param arch The machine: the C library's name and kcmp's number depend on it.
 * @param pid This process's id.
 * @param open Binds LIBC_CALLS in the library named (throws where it cannot).
 * @param readInt Reads the int a pointer points at (errno).
 * @returns The C library, or `undefined` where no name could be opened.
 * @example
 * ```ts
 * import { openLibcWith } from "./_adopt_libc.ts";
 * const libc = openLibcWith("x86_64", 1, () => { throw new Error("no FFI here"); }, () => 0);
 * console.assert(libc === undefined);
 * ```
 */
export function openLibcWith<P>(
  arch: "x86_64" | "aarch64",
  pid: number,
  open: (name: string) => BoundLibc<P>,
  readInt: (pointer: P) => number,
): AdoptLibc | undefined {
  for (const name of ["libc.so.6", `libc.musl-${arch}.so.1`]) {
    let symbols: BoundLibc<P>;
    try {
      symbols = open(name);
    } catch {
      continue;
    }
    const self = BigInt(pid);
    return {
      ...symbols,
      sameFile: (a, b) => Number(symbols.syscall(SYS_KCMP[arch], self, self, KCMP_FILE, BigInt(a), BigInt(b))),
      errno: () => readInt(symbols.__errno_location()),
    };
  }
  return undefined;
}

/**
 * Why a call failed, as `what (ECODE)`: the errno the C library set.
 *
 * @example
 * ```ts ignore
 * if (libc.listen(fd, 511) !== 0) return failure(libc, `descriptor ${fd} cannot listen`);
 * ```
 */
export function failure(libc: AdoptLibc, what: string): string {
  const errno = libc.errno();
  let code = `errno ${errno}`;
  try {
    if (errno > 0) code = getSystemErrorName(-errno);
  } catch {
    // An errno node:util has no name for: its number.
  }
  return `${what} (${code})`;
}

/** A socket's family and name: its port (TCP) or its path (Unix). */
export interface SocketName {
  readonly family: number;
  readonly port: number;
  readonly path: string;
  /** The IP address of a TCP one, as text (where read from a sockaddr). */
  readonly host?: string;
}

/**
 * Reads a `struct sockaddr` (Linux, little-endian family): the family, the address and port of an
 * IP one, the path of a Unix one (up to its NUL).
 *
 * @param addr The bytes getsockname wrote.
 * @param length How many it wrote.
 * @returns The name.
 * @example
 * ```ts
 * import { parseSockaddr } from "./_adopt_libc.ts";
 * const addr = new Uint8Array([2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
 * console.assert(parseSockaddr(addr, 16).port === 8080 && parseSockaddr(addr, 16).host === "127.0.0.1");
 * ```
 */
export function parseSockaddr(addr: Uint8Array, length: number): SocketName {
  const family = addr[0]! | (addr[1]! << 8);
  if (family === AF_INET || family === AF_INET6) {
    const host = family === AF_INET ? formatIPv4(addr, 4) : formatIPv6(addr, 8);
    return { family, port: (addr[2]! << 8) | addr[3]!, path: "", host };
  }
  if (family !== AF_UNIX) return { family, port: 0, path: "" };
  const bytes = addr.subarray(2, Math.min(length, addr.length));
  const end = bytes.indexOf(0, bytes[0] === 0 ? 1 : 0);
  return { family, port: 0, path: new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end)) };
}

/**
 * An int socket option, or undefined where the call fails.
 *
 * @example
 * ```ts ignore
 * const type = intOption(libc, fd, 1, 3); // SOL_SOCKET, SO_TYPE
 * ```
 */
export function intOption(libc: AdoptLibc, fd: number, level: number, name: number): number | undefined {
  const value = new Int32Array(1), length = new Uint32Array([4]);
  return libc.getsockopt(fd, level, name, new Uint8Array(value.buffer), length) === 0 ? value[0] : undefined;
}

/**
 * A socket's name (getsockname), or undefined where the call fails.
 *
 * @example
 * ```ts ignore
 * const port = nameOf(libc, fd)?.port;
 * ```
 */
export function nameOf(libc: AdoptLibc, fd: number): SocketName | undefined {
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
