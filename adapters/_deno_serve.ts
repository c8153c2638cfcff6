// Deno.serve as the adapter's fetch server: the runtime's own HTTP server, for fetch handlers.

import type { FetchErrorHandler, FetchHandler, FetchServer, FetchServerStart } from "../src/_adapter.ts";
import type { FetchInfo } from "../src/worker.ts";

/** What Deno.serve returns, as much of it as is used. */
export interface DenoHttpServer {
  readonly addr: { readonly port?: number; readonly path?: string };
  shutdown(): Promise<void>;
}
interface DenoServeApi {
  serve(
    options: Record<string, unknown>,
    handler: (request: Request, info: FetchInfo) => Response | Promise<Response>,
  ): DenoHttpServer;
}

/**
 * Starts Deno.serve on `options` (from serveTargets: `{ hostname, port, reusePort }` or
 * `{ path }`), HTTPS with `tls: { cert, key }` (PEM text: Deno.serve takes them as `cert` and
 * `key`, and offers ALPN h2 and http/1.1). Deno.serve binds before it returns, and throws when
 * the OS refuses.
 */
export const denoFetchServer: FetchServerStart = (options, handler, onError) => {
  const server = denoServe(options, handler, onError);
  let stopped: Promise<void> | undefined;
  const api: FetchServer = {
    // shutdown() is Deno's only way to stop accepting: it resolves once the requests in flight
    // are answered, and closes the connections that have not sent one yet.
    stopAccepting: () => stopped ??= server.shutdown(),
    pending: 0,
    // Deno.serve has no forced close: what is left ends with the worker, which is what calls this.
    close: () => Promise.resolve(),
  };
  return Promise.resolve(api);
};

/**
 * Deno.serve itself, quiet, on `options` as denoFetchServer takes them (`tls: { cert, key }`
 * becomes Deno's `cert` and `key`). Throws where the OS refuses.
 *
 * @param options Where to listen, and HTTPS.
 * @param handler The fetch handler.
 * @param onError What answers the handler's errors.
 * @returns Deno's server.
 * @example
 * ```ts ignore
 * const server = denoServe({ hostname: "127.0.0.1", port: 0 }, () => new Response("hi"));
 * await server.shutdown();
 * ```
 */
export function denoServe(
  options: Record<string, unknown>,
  handler: FetchHandler,
  onError?: FetchErrorHandler,
): DenoHttpServer {
  const deno = (globalThis as unknown as { Deno: DenoServeApi }).Deno;
  const { tls, ...rest } = options as { tls?: { cert: string; key: string } };
  const answers = { onListen() {}, ...(onError ? { onError } : {}) };
  // `info` is Deno's ServeHandlerInfo, with remoteAddr as FetchInfo has it.
  return deno.serve({ ...rest, ...(tls ? { cert: tls.cert, key: tls.key } : {}), ...answers }, handler);
}
