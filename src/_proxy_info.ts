// What a connection's PROXY header said, as a Conn gives it (`conn.proxy`): a file of its own,
// apart from the Conn that makes it (_proxy_conn.ts), so that the public types reach no class.

import type { ProxyHeader } from "./_proxy_header.ts";
import type { Addr } from "./types.ts";

/**
 * What a connection's PROXY header said: the header (switch on `transport` for the addresses,
 * pass it to the TLV readers such as `getAuthority(conn.proxy)`) and the addresses of the
 * connection the proxy made.
 *
 * @example
 * ```ts
 * import type { ProxyInfo } from "./_proxy_info.ts";
 * function describe(info: ProxyInfo): string {
 *   const via = info.via.remoteAddr;
 *   const proxy = via.transport === "tcp" ? via.hostname : via.path;
 *   return info.transport === "tcp4" || info.transport === "tcp6"
 *     ? `${info.source.hostname} via ${proxy}`
 *     : `${info.command} from ${proxy}`;
 * }
 * ```
 */
export type ProxyInfo = ProxyHeader & {
  /**
   * The connection as the socket has it: `remoteAddr` is the proxy that sent the header,
   * `localAddr` the address it connected to. (The Conn's own addresses are the header's.)
   */
  readonly via: { readonly remoteAddr: Addr; readonly localAddr: Addr };
};
