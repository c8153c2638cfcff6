// Deno.serve on a lent socket (see _adopt.ts): the C library through Deno.dlopen, which needs
// --allow-ffi (stable since Deno 2: no --unstable-ffi), and reading /proc/self (--allow-read).
// Without either, or off Linux x86_64/aarch64, a lent socket is served another way.

import type { FetchHandler, FetchServerAdopt } from "../src/_adapter.ts";
import { adoptLent, type AdoptLibc } from "./_adopt.ts";
import { denoServe } from "./_deno_serve.ts";

/** The parts of Deno's API used here. */
interface DenoFfiApi {
  build: { os: string; arch: string };
  permissions: { querySync(descriptor: { name: string; path?: string }): { state: string } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: unknown };
  UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number };
  pid: number;
}

/** The symbols bound beside AdoptLibc's plain calls. */
interface Extra {
  dup3(from: number, to: number, flags: number): number;
  syscall(n: bigint, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint): bigint;
  __errno_location(): unknown;
}

const SYMBOLS = {
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  dup3: { parameters: ["i32", "i32", "i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  __errno_location: { parameters: [], result: "pointer" },
};

/** kcmp's number (x86_64, aarch64), and KCMP_FILE. */
const SYS_KCMP = { x86_64: 312n, aarch64: 272n }, KCMP_FILE = 0n;

let opened: { libc: AdoptLibc; arch: "x86_64" | "aarch64" } | string | undefined;

/** The C library, opened once, or why it cannot be. */
function openLibc(): { libc: AdoptLibc; arch: "x86_64" | "aarch64" } | string {
  if (opened !== undefined) return opened;
  const deno = (globalThis as unknown as { Deno: DenoFfiApi }).Deno;
  const { os, arch } = deno.build;
  if (os !== "linux" || (arch !== "x86_64" && arch !== "aarch64")) return opened = `not on Linux x86_64 or aarch64`;
  // Asked, never prompted for: a worker without the permissions serves another way.
  const granted = (name: string, path?: string) => deno.permissions.querySync({ name, path }).state === "granted";
  if (!granted("ffi") || !granted("read", "/proc/self")) return opened = "Deno has no --allow-ffi or --allow-read";
  for (const name of ["libc.so.6", `libc.musl-${arch}.so.1`]) {
    try {
      const symbols = deno.dlopen(name, SYMBOLS).symbols as Omit<AdoptLibc, "sameFile" | "errno"> & Extra;
      const pid = BigInt(deno.pid);
      const libc: AdoptLibc = {
        ...symbols,
        sameFile: (a, b) => Number(symbols.syscall(SYS_KCMP[arch], pid, pid, KCMP_FILE, BigInt(a), BigInt(b))),
        errno: () => new deno.UnsafePointerView(symbols.__errno_location()).getInt32(),
      };
      return opened = { libc, arch };
    } catch {
      // The next name.
    }
  }
  return opened = "the C library could not be opened";
}

/**
 * Starts Deno.serve on a lent socket: a throwaway server moved onto it (see adoptLent). Its
 * drain takes the socket out of Deno's epoll instance (the socket stays open: other processes
 * serve it), counts what is in flight until its response is sent (so the drain waits for
 * streamed bodies), and close() waits for Deno's shutdown() where nothing is in flight.
 */
export const denoAdoptFetchServer: FetchServerAdopt = (socket, options, handler) =>
  denoAdoptWith((libc) => libc)(socket, options, handler);

/**
 * denoAdoptFetchServer with the C library as `wrap` makes it (tests inject failing calls).
 *
 * @param wrap Makes the C library used from the real one.
 * @returns The adopt function.
 * @example
 * ```ts ignore
 * const adopt = denoAdoptWith((libc) => ({ ...libc, listen: () => -1 }));
 * console.log(await adopt({ fd: 3, backlog: 511, owned: false }, {}, () => new Response("x")));
 * ```
 */
export const denoAdoptWith = (wrap: (libc: AdoptLibc) => AdoptLibc): FetchServerAdopt => (socket, options, handler) => {
  const sys = openLibc();
  if (typeof sys === "string") {
    return Promise.resolve(`Deno cannot adopt a socket here: ${sys}`);
  }
  // In flight until the response is sent, body and all (Deno's info.completed settles then).
  let pending = 0;
  const done = () => void pending--;
  const counted: FetchHandler = (request, info) => {
    const completed = (info as { completed?: Promise<void> }).completed;
    if (completed !== undefined) {
      pending++;
      completed.then(done, done);
    }
    return handler(request, info);
  };
  const { tls } = options;
  return adoptLent(wrap(sys.libc), sys.arch, socket, tls !== undefined, (place) => {
    const server = denoServe({ ...place, ...(tls ? { tls } : {}) }, counted);
    let stopped: Promise<void> | undefined;
    const shutdown = () => stopped ??= server.shutdown().catch(() => {});
    return {
      port: server.addr.port ?? 0,
      shutdown,
      adopted: (stopAccepting) => ({
        stopAccepting: () => Promise.resolve(stopAccepting()),
        get pending() {
          return pending;
        },
        // Deno.serve has no forced close. Drained (nothing in flight): shutdown() closes the idle
        // connections, waited for so the worker leaves nothing half-closed. At the grace deadline
        // (something in flight): not waited for, so the worker's exit cuts what is left, as asked.
        close: () => {
          if (pending === 0) return shutdown();
          void shutdown();
          return Promise.resolve();
        },
      }),
    };
  });
};
