// Deno.serve as the adapter's fetch server: the runtime's own HTTP server, for fetch handlers.

import type { FetchHandler, FetchInfo, FetchServer, FetchServerStart } from "../src/_adapter.ts";

interface DenoHttpServer {
  shutdown(): Promise<void>;
  finished: Promise<void>;
}
interface DenoServeApi {
  serve(
    options: Record<string, unknown>,
    handler: (request: Request, info: FetchInfo) => Response | Promise<Response>,
  ): DenoHttpServer;
}

/**
 * Starts Deno.serve on `options` (from serveTargets: `{ hostname, port, reusePort }` or
 * `{ path }`). Deno.serve binds before it returns, and throws when the OS refuses.
 */
export const denoFetchServer: FetchServerStart = (options, handler: FetchHandler) => {
  const deno = (globalThis as unknown as { Deno: DenoServeApi }).Deno;
  // `info` is Deno's ServeHandlerInfo, with remoteAddr as FetchInfo has it.
  const server = deno.serve({ ...options, onListen() {} }, handler);
  let drained: Promise<void> | undefined;
  const api: FetchServer = {
    // Stops accepting; hyper answers the requests in flight with `connection: close`, then closes.
    drain: () => drained ??= server.shutdown(),
    // Deno.serve has no forced close: what is left ends with the worker, which is what calls this.
    close: () => Promise.resolve(),
  };
  return Promise.resolve(api);
};
