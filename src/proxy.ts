// The PROXY protocol, public part: the options, what `conn.proxy` holds, readers for the common
// TLVs, the header encoder, and withProxyProtocol for a listener created without the option
// (the polybind command wraps its workers' listeners with it).

import type { Listener } from "./types.ts";
import { checkProxyProtocol, type ProxyProtocolOptions } from "./_proxy_options.ts";
import { withProxyProtocol as wrap } from "./_proxy_listener.ts";

export type { ProxyProtocolOptions } from "./_proxy_options.ts";
export type { ProxyInfo } from "./_proxy_info.ts";
export type {
  ProxyHeader,
  ProxyHeaderCommon,
  ProxyNetEndpoint,
  ProxyNetHeader,
  ProxyTlv,
  ProxyTransport,
  ProxyUnixEndpoint,
  ProxyUnixHeader,
  ProxyUnspecHeader,
} from "./_proxy_header.ts";
export { ProxySslSubtype, ProxyTlvType } from "./_proxy_tlv.ts";
export {
  getAlpn,
  getAuthority,
  getAwsVpceId,
  getAzureLinkId,
  getCrc32c,
  getGcpPscConnectionId,
  getNetns,
  getSsl,
  getUniqueId,
  type ProxySsl,
} from "./_proxy_tlv_readers.ts";
export { buildProxyHeader, type BuildProxyHeaderOptions } from "./_proxy_build.ts";

/**
 * Reads the PROXY protocol header (v1 or v2, detected per connection) that a load balancer
 * sends first, on every connection of `listener`: the Conns it hands out have the client's
 * address as `remoteAddr`, the address the client connected to as `localAddr`, and what the
 * header said as `conn.proxy`. Headers are read concurrently, each within `timeoutMs`; a
 * connection refused by the policy, or whose header is malformed or late, is closed and never
 * reaches accept(). `handOffConnections` from such a listener gives an http.Server
 * `req.socket.remoteAddress` (and `remotePort`, `localAddress`, `localPort`) from the header,
 * on every runtime; `conn.native` keeps the socket's own addresses, as `conn.proxy.via` does.
 *
 * @param listener A listener; the returned one owns it (closing it closes `listener`).
 * @param options `true` for the defaults (headers from loopback only, required, 5 s), or
 *   {@linkcode ProxyProtocolOptions}.
 * @returns The listener of connections that passed.
 * @throws {TypeError} An option has the wrong type.
 * @throws {RangeError} An option is out of range or unknown, or a trusted block is not an IP
 *   address or CIDR block; the message names it.
 * @example
 * ```ts
 * import { connect } from "node:net";
 * import { createListener } from "../mod.ts";
 * import { buildProxyHeader, withProxyProtocol } from "./proxy.ts";
 *
 * await using listener = withProxyProtocol(await createListener({ host: "127.0.0.1", port: 0 }), {
 *   trusted: ["127.0.0.1"],
 * });
 * const port = listener.addr.transport === "tcp" ? listener.addr.port : 0;
 * const client = connect({ host: "127.0.0.1", port }, () => {
 *   client.end(buildProxyHeader({
 *     version: 2,
 *     command: "proxy",
 *     transport: "tcp4",
 *     source: { hostname: "203.0.113.7", port: 51000 },
 *     destination: { hostname: "192.0.2.1", port: 443 },
 *     tlvs: [],
 *   }));
 * });
 * await using conn = await listener.accept();
 * console.assert(conn.remoteAddr.transport === "tcp" && conn.remoteAddr.hostname === "203.0.113.7");
 * console.assert(conn.proxy?.version === 2);
 * client.destroy();
 * ```
 */
export function withProxyProtocol(listener: Listener, options: ProxyProtocolOptions | true = true): Listener {
  const checked = checkProxyProtocol(options);
  if (checked === undefined) {
    throw new TypeError(
      `Cannot listen as 'proxyProtocol' must be true or an object of options: current value is false`,
    );
  }
  return wrap(listener, checked);
}
