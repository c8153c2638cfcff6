// Bun.serve on a lent socket (see _adopt.ts): the C library through bun:ffi (Linux x86_64 and
// aarch64); elsewhere, or where bun:ffi cannot open it, a lent socket is served another way.

import process from "node:process";
import type { FetchServerAdopt } from "../src/_adapter.ts";
import { adoptLent, type AdoptLibc } from "./_adopt.ts";
import { bunServe } from "./_bun_serve.ts";

const SYMBOLS = {
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  dup3: { args: ["i32", "i32", "i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  syscall: { args: ["i64", "i64", "i64", "i64", "i64", "i64"], returns: "i64" },
  __errno_location: { args: [], returns: "ptr" },
};

/** kcmp's number (x86_64, aarch64), and KCMP_FILE. */
const SYS_KCMP = { x86_64: 312n, aarch64: 272n }, KCMP_FILE = 0n;

/** The symbols bound beside AdoptLibc's plain calls. */
interface Extra {
  syscall(n: bigint, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint): bigint | number;
  __errno_location(): number;
}

/** bun:ffi's module, as much of it as is used. */
interface BunFfi {
  dlopen(name: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: unknown };
  read: { i32(pointer: number, offset?: number): number };
}

let opened: Promise<{ libc: AdoptLibc; arch: "x86_64" | "aarch64" } | string> | undefined;

/** The C library, opened once, or why it cannot be. */
function openLibc(): Promise<{ libc: AdoptLibc; arch: "x86_64" | "aarch64" } | string> {
  return opened ??= (async () => {
    const arch = process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : undefined;
    if (process.platform !== "linux" || arch === undefined) return "not on Linux x86_64 or aarch64";
    let ffi: BunFfi;
    try {
      ffi = await import(["bun", "ffi"].join(":")) as BunFfi;
    } catch {
      return "no bun:ffi";
    }
    for (const name of ["libc.so.6", `libc.musl-${arch}.so.1`]) {
      try {
        const symbols = ffi.dlopen(name, SYMBOLS).symbols as Omit<AdoptLibc, "sameFile" | "errno"> & Extra;
        const pid = BigInt(process.pid);
        const libc: AdoptLibc = {
          ...symbols,
          sameFile: (a, b) => Number(symbols.syscall(SYS_KCMP[arch], pid, pid, KCMP_FILE, BigInt(a), BigInt(b))),
          errno: () => ffi.read.i32(symbols.__errno_location()),
        };
        return { libc, arch };
      } catch {
        // The next name.
      }
    }
    return "the C library could not be opened";
  })();
}

/**
 * Starts Bun.serve on a lent socket: a throwaway server moved onto it (see adoptLent). Its
 * drain takes the socket out of Bun's epoll instance (the socket stays open: other processes
 * serve it); stop(true) ends what is left.
 */
export const bunAdoptFetchServer: FetchServerAdopt = (socket, options, handler) =>
  bunAdoptWith((libc) => libc)(socket, options, handler);

/**
 * bunAdoptFetchServer with the C library as `wrap` makes it (tests inject failing calls).
 *
 * @param wrap Makes the C library used from the real one.
 * @returns The adopt function.
 * @example
 * ```ts ignore
 * const adopt = bunAdoptWith((libc) => ({ ...libc, listen: () => -1 }));
 * console.log(await adopt({ fd: 3, backlog: 511, owned: false }, {}, () => new Response("x")));
 * ```
 */
export const bunAdoptWith =
  (wrap: (libc: AdoptLibc) => AdoptLibc): FetchServerAdopt => async (socket, options, handler) => {
    const sys = await openLibc();
    if (typeof sys === "string") return `Bun cannot adopt a socket here: ${sys}`;
    return await adoptLent(wrap(sys.libc), sys.arch, socket, options.tls !== undefined, (place) => {
      const where = "path" in place ? { unix: place.path } : place;
      // A Unix socket's client has no name (FetchInfo): not the throwaway's path, gone by then.
      const server = bunServe({ ...where, ...options }, handler, "path" in place ? "" : undefined);
      let stopped: Promise<void> | undefined;
      const stop = () => stopped ??= Promise.resolve(server.stop(true));
      return {
        port: server.port ?? 0,
        shutdown: stop,
        adopted: (stopAccepting) => ({
          stopAccepting: () => Promise.resolve(stopAccepting()),
          get pending() {
            return server.pendingRequests;
          },
          close: stop,
        }),
      };
    });
  };
