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
}

const SYMBOLS = {
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
};

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
      return opened = { libc: deno.dlopen(name, SYMBOLS).symbols as AdoptLibc, arch };
    } catch {
      // The next name.
    }
  }
  return opened = "the C library could not be opened";
}

/**
 * Starts Deno.serve on a lent socket: a throwaway server moved onto it (see adoptLent). Its
 * drain takes the socket out of Deno's epoll instance (the socket stays open: other processes
 * serve it), counts what is in flight, and shutdown() ends the rest.
 */
export const denoAdoptFetchServer: FetchServerAdopt = (socket, options, handler) => {
  const sys = openLibc();
  if (typeof sys === "string") {
    return Promise.resolve(`Deno cannot adopt a socket here: ${sys}`);
  }
  let pending = 0;
  const counted: FetchHandler = (request, info) => {
    pending++;
    let response: Response | Promise<Response>;
    try {
      response = handler(request, info);
    } catch (err) {
      pending--;
      throw err;
    }
    if (!(response instanceof Response)) return Promise.resolve(response).finally(() => pending--);
    pending--;
    return response;
  };
  const { tls } = options;
  return adoptLent(sys.libc, sys.arch, socket, tls !== undefined, (place) => {
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
        // Deno.serve has no forced close: shutdown() ends idle connections and waits for requests
        // in flight, which end with the worker (what calls this) when the grace time is up.
        close: () => {
          void shutdown();
          return Promise.resolve();
        },
      }),
    };
  });
};
