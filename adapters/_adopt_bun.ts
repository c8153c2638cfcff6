// Bun.serve on a lent socket (see _adopt.ts): the C library through bun:ffi (Linux x86_64 and
// aarch64); elsewhere, or where bun:ffi cannot open it, a lent socket is served another way.

import process from "node:process";
import type { FetchServerAdopt } from "../src/_adapter.ts";
import { adoptLent } from "./_adopt.ts";
import { type AdoptLibc, type BoundLibc, LIBC_CALLS, openLibcWith } from "./_adopt_libc.ts";
import { bunServe } from "./_bun_serve.ts";

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
    const bind = (name: string) => {
      const symbols = Object.fromEntries(
        Object.entries(LIBC_CALLS).map(([call, [args, returns]]) => [call, { args: [...args], returns }]),
      );
      return ffi.dlopen(name, symbols).symbols as BoundLibc<number>;
    };
    const libc = openLibcWith(arch, process.pid, bind, (pointer: number) => ffi.read.i32(pointer));
    if (libc !== undefined) return { libc, arch };
    return "the C library could not be opened";
  })();
}

/**
 * Starts Bun.serve on a lent socket: a throwaway server moved onto it (see adoptLent). Its
 * drain takes the socket out of Bun's epoll instance (the socket stays open: other processes
 * serve it); stop(true) ends what is left.
 */
export const bunAdoptFetchServer: FetchServerAdopt = (socket, options, handler, onError) =>
  bunAdoptWith((libc) => libc)(socket, options, handler, onError);

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
  (wrap: (libc: AdoptLibc) => AdoptLibc): FetchServerAdopt => async (socket, options, handler, onError) => {
    const sys = await openLibc();
    if (typeof sys === "string") return `Bun cannot adopt a socket here: ${sys}`;
    return await adoptLent(wrap(sys.libc), sys.arch, socket, options.tls !== undefined, (place) => {
      const where = "path" in place ? { unix: place.path } : place;
      // A Unix socket's client has no name (FetchInfo): not the throwaway's path, gone by then.
      const server = bunServe({ ...where, ...options }, handler, "path" in place ? "" : undefined, onError);
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
