// Deno.serve on a lent socket (see _adopt.ts): the C library through Deno.dlopen, which needs
// --allow-ffi (stable since Deno 2: no --unstable-ffi), and reading /proc/self (--allow-read).
// Without either, or off Linux x86_64/aarch64, a lent socket is served another way.

import type { FetchHandler, FetchServerAdopt } from "../src/_adapter.ts";
import { adoptLent } from "./_adopt.ts";
import { type AdoptLibc, type BoundLibc, LIBC_CALLS, openLibcWith } from "./_adopt_libc.ts";
import { denoServe } from "./_deno_serve.ts";

/** The parts of Deno's API used here. */
interface DenoFfiApi {
  build: { os: string; arch: string };
  permissions: { querySync(descriptor: { name: string; path?: string }): { state: string } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: unknown };
  UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number };
  pid: number;
}

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
  const bind = (name: string) => {
    const pointer = (t: string) => t === "ptr" ? "buffer" : t;
    const symbols = Object.fromEntries(
      Object.entries(LIBC_CALLS).map((
        [call, [parameters, result]],
      ) => [call, { parameters: parameters.map(pointer), result: result === "ptr" ? "pointer" : result }]),
    );
    return deno.dlopen(name, symbols).symbols as BoundLibc<unknown>;
  };
  const libc = openLibcWith(arch, deno.pid, bind, (pointer) => new deno.UnsafePointerView(pointer).getInt32());
  if (libc !== undefined) return opened = { libc, arch };
  return opened = "the C library could not be opened";
}

/**
 * Starts Deno.serve on a lent socket: a throwaway server moved onto it (see adoptLent). Its
 * drain takes the socket out of Deno's epoll instance (the socket stays open: other processes
 * serve it), counts the handlers still running, then finish() waits for Deno's shutdown(),
 * which lets the responses still being sent (streamed bodies) end and closes the idle
 * connections; close() at the grace deadline does not wait.
 */
export const denoAdoptFetchServer: FetchServerAdopt = (socket, options, handler, onError) =>
  denoAdoptWith((libc) => libc)(socket, options, handler, onError);

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
export const denoAdoptWith = (wrap: (libc: AdoptLibc) => AdoptLibc): FetchServerAdopt =>
(
  socket,
  options,
  handler,
  onError,
) => {
  const sys = openLibc();
  if (typeof sys === "string") {
    return Promise.resolve(`Deno cannot adopt a socket here: ${sys}`);
  }
  // Handlers still running (an answer given at once is never pending). What is sent after the
  // handler, a streamed body, is left to shutdown(), which waits for it: Deno's info.completed
  // would tell it too, at about 3 % of a small request's cost.
  let pending = 0;
  const done = () => void pending--;
  const counted: FetchHandler = (request, info) => {
    const response = handler(request, info);
    if (response instanceof Promise) {
      pending++;
      response.then(done, done);
    }
    return response;
  };
  const { tls } = options;
  return adoptLent(wrap(sys.libc), sys.arch, socket, tls !== undefined, (place) => {
    const server = denoServe({ ...place, ...(tls ? { tls } : {}) }, counted, onError);
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
        // Drained: shutdown() waits for the bodies still streaming and closes the idle
        // connections, so the worker leaves nothing half-closed.
        finish: shutdown,
        // Deno.serve has no forced close: at the grace deadline shutdown() is not waited for, and
        // the worker's exit cuts what is left, as asked.
        close: () => {
          void shutdown();
          return Promise.resolve();
        },
      }),
    };
  });
};
