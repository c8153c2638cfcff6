// Bun.serve as the adapter's fetch server: the runtime's own HTTP server, for fetch handlers.

import type { FetchHandler, FetchInfo, FetchServer, FetchServerStart } from "../src/_adapter.ts";

interface BunHttpServer {
  stop(closeActiveConnections?: boolean): Promise<void> | void;
  requestIP(request: Request): { address: string; port: number } | null;
  readonly pendingRequests: number;
}
interface BunServeApi {
  serve(options: Record<string, unknown>): BunHttpServer;
}

/** How often a draining server looks whether its last request has been answered. */
const DRAIN_POLL_MS = 10;
/**
 * How long nothing must be in flight before a draining server closes the connections left: ones
 * accepted whose request has not come (stop(false) closes idle keep-alive ones itself, and
 * closing a connection just accepted, its request on the way, would reset it).
 */
const QUIET_MS = 250;

/**
 * Starts Bun.serve on `options` (from serveTargets: `{ hostname, port, reusePort }` or
 * `{ unix }`). Bun.serve binds before it returns, and throws when the OS refuses.
 */
export const bunFetchServer: FetchServerStart = (options, handler: FetchHandler) => {
  const bun = (globalThis as unknown as { Bun: BunServeApi }).Bun;
  const unix = typeof options.unix === "string" ? { transport: "unix" as const, path: options.unix } : undefined;
  const server = bun.serve({
    ...options,
    fetch(request: Request, self: BunHttpServer) {
      const ip = unix ? null : self.requestIP(request);
      const info: FetchInfo = {
        remoteAddr: ip ? { transport: "tcp", hostname: ip.address, port: ip.port } : unix!,
      };
      return handler(request, info);
    },
  });
  let drained: Promise<void> | undefined;
  const api: FetchServer = {
    // stop(false) stops accepting, lets requests in flight finish and closes idle keep-alive
    // connections; a connection accepted whose request has not come yet stays open: it is
    // served, and closed once nothing has been in flight for QUIET_MS.
    drain: () =>
      drained ??= (async () => {
        await server.stop(false);
        for (let quiet = 0; quiet < QUIET_MS; quiet += DRAIN_POLL_MS) {
          if (server.pendingRequests > 0) quiet = 0;
          await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
        }
        await server.stop(true);
      })(),
    close: async () => void await server.stop(true),
  };
  return Promise.resolve(api);
};
