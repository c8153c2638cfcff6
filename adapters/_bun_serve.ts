// Bun.serve as the adapter's fetch server: the runtime's own HTTP server, for fetch handlers.

import type { FetchHandler, FetchServer, FetchServerStart } from "../src/_adapter.ts";
import type { FetchInfo } from "../src/worker.ts";

interface BunHttpServer {
  stop(closeActiveConnections?: boolean): Promise<void> | void;
  requestIP(request: Request): { address: string; port: number } | null;
  readonly pendingRequests: number;
}
interface BunServeApi {
  serve(options: Record<string, unknown>): BunHttpServer;
}

/**
 * A TCP request's FetchInfo: the client's address is looked up only if the app reads it
 * (requestIP costs about 12% of a small request), by a getter of the class, not of each object.
 */
class BunInfo implements FetchInfo {
  constructor(readonly request: Request, readonly server: BunHttpServer) {}
  get remoteAddr(): FetchInfo["remoteAddr"] {
    const ip = this.server.requestIP(this.request);
    return { transport: "tcp", hostname: ip?.address ?? "", port: ip?.port ?? 0 };
  }
}

/**
 * Starts Bun.serve on `options` (from serveTargets: `{ hostname, port, reusePort }` or
 * `{ unix }`), HTTPS with `tls: { cert, key }` (PEM text, as Bun.serve takes it; HTTP/1.1 only:
 * Bun.serve offers no h2). Bun.serve binds before it returns, and throws when the OS refuses.
 */
export const bunFetchServer: FetchServerStart = (options, handler: FetchHandler) => {
  const bun = (globalThis as unknown as { Bun: BunServeApi }).Bun;
  const unix = typeof options.unix === "string" ? { transport: "unix" as const, path: options.unix } : undefined;
  const server = bun.serve({
    ...options,
    // The handler answers errors itself; no development page with the app's source, ever.
    development: false,
    fetch: unix
      ? (request: Request) => handler(request, { remoteAddr: unix })
      : (request: Request, self: BunHttpServer) => handler(request, new BunInfo(request, self)),
  });
  const api: FetchServer = {
    // stop(false): stops accepting, lets requests in flight finish, closes idle keep-alive connections.
    stopAccepting: async () => void await server.stop(false),
    get pending() {
      return server.pendingRequests;
    },
    close: async () => void await server.stop(true),
  };
  return Promise.resolve(api);
};
