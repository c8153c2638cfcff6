/**
 * polybind creates and configures server sockets the same way on Deno, Bun and Node.js: TCP
 * (IPv4 and IPv6), Unix sockets and UDP, with the socket options a server needs, and for a
 * server with several workers the right strategy: one SO_REUSEPORT socket per worker where the
 * kernel balances connections, one shared socket elsewhere. {@linkcode supervise} runs a fetch
 * app (Hono, h3, what `deno serve` runs) or a worker module (Express, Fastify) on N workers,
 * starts a worker that dies again, and stops gracefully.
 *
 * @example
 * ```ts
 * import { createListener } from "./mod.ts";
 * await using listener = await createListener({ host: "127.0.0.1", port: 0 });
 * // for await (const conn of listener) { ... }
 * ```
 *
 * @module
 */
import "./adapters/probe.ts";

export type {
  Addr,
  Capabilities,
  Conn,
  DatagramListener,
  DrainOptions,
  Listener,
  NetAddr,
  Runtime,
  ServerConfig,
  TcpAddr,
  UdpAddr,
  UnixAddr,
} from "./src/types.ts";
export { ListenError } from "./src/errors.ts";
export { capabilities, hasReusePort, probeCapabilities } from "./src/capabilities.ts";
export { cleanupUnixSocket, createListener, createListeners, type CreateListenersOptions } from "./src/listen.ts";
export { createUdpListener, createUdpListeners, type UdpListenersOptions } from "./src/udp.ts";
export { createListenerPair, createListenerPairs, type ListenerPair } from "./src/pair.ts";
export { formatAddress, parseAddress } from "./src/address.ts";
export {
  checkPlan,
  type ListenerPlan,
  type PlanAddress,
  planListeners,
  type PlanOptions,
  type PlanStrategy,
} from "./src/plan.ts";
export { type ConnectionSink, handOffConnections } from "./src/handoff.ts";
export {
  buildProxyHeader,
  type BuildProxyHeaderOptions,
  getAlpn,
  getAuthority,
  getAwsVpceId,
  getAzureLinkId,
  getCrc32c,
  getGcpPscConnectionId,
  getNetns,
  getSsl,
  getUniqueId,
  type ProxyHeader,
  type ProxyHeaderCommon,
  type ProxyInfo,
  type ProxyNetEndpoint,
  type ProxyNetHeader,
  type ProxyProtocolOptions,
  type ProxySsl,
  ProxySslSubtype,
  type ProxyTlv,
  ProxyTlvType,
  type ProxyTransport,
  type ProxyUnixEndpoint,
  type ProxyUnixHeader,
  type ProxyUnspecHeader,
  withProxyProtocol,
} from "./src/proxy.ts";
export { listenFromPlan, type PreparedPlan, preparePlan } from "./src/workers.ts";
export { type ServeOptions, type ServeTarget, serveTargets } from "./src/serve.ts";
export {
  type Handover,
  type HandoverChoice,
  planHandover,
  type ReloadResult,
  type StopSignal,
  supervise,
  type SuperviseOptions,
  type Supervisor,
  type SupervisorEvent,
  type SupervisorSummary,
} from "./src/supervise.ts";
export {
  type HandedSocket,
  startSuccessor,
  type Successor,
  type SuccessorOptions,
  successorReady,
} from "./src/successor.ts";
export { type FetchApp, type FetchInfo, type WorkerContext, workerContext } from "./src/worker.ts";
