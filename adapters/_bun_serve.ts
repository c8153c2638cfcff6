// Bun.serve as the adapter's fetch server: the runtime's own HTTP server, for fetch handlers.

import type { FetchErrorHandler, FetchHandler, FetchServer, FetchServerStart } from "../src/_adapter.ts";
import type { FetchInfo } from "../src/worker.ts";

/** What Bun.serve returns, as much of it as is used. */
export interface BunHttpServer {
  readonly port?: number;
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
export const bunFetchServer: FetchServerStart = (options, handler, onError) => {
  const server = bunServe(options, handler, typeof options.unix === "string" ? options.unix : undefined, onError);
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

/**
 * Bun.serve itself on `options` as bunFetchServer takes them; requests on a Unix socket name
 * `unix` as the client's path (FetchInfo). Throws where the OS refuses.
 *
 * @param options Where to listen, and HTTPS.
 * @param handler The fetch handler.
 * @param unix The Unix socket's path, where it serves one.
 * @param onError What answers the handler's errors.
 * @returns Bun's server.
 * @example
 * ```ts ignore
 * const server = bunServe({ hostname: "127.0.0.1", port: 0 }, () => new Response("hi"), undefined);
 * await server.stop(true);
 * ```
 */
export function bunServe(
  options: Record<string, unknown>,
  handler: FetchHandler,
  unix: string | undefined,
  onError?: FetchErrorHandler,
): BunHttpServer {
  const bun = (globalThis as unknown as { Bun: BunServeApi }).Bun;
  const remote = unix === undefined ? undefined : { transport: "unix" as const, path: unix };
  return bun.serve({
    ...options,
    // No development page with the app's source, ever.
    development: false,
    ...(onError ? { error: onError } : {}),
    fetch: remote
      ? (request: Request) => handler(request, { remoteAddr: remote })
      : (request: Request, self: BunHttpServer) => handler(request, new BunInfo(request, self)),
  });
}
