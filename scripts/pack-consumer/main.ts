// A program a TypeScript user of the npm package would write, using every export of "polybind".
// scripts/pack-check.mjs copies it into a folder where the packed tarball is installed, compiles
// it with tsc against the installed types and runs it on Node.js. It prints "consumer ok".

import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  type Addr,
  buildProxyHeader,
  type BuildProxyHeaderOptions,
  type Capabilities,
  capabilities,
  checkPlan,
  cleanupUnixSocket,
  type Conn,
  type ConnectionSink,
  createListener,
  createListenerPair,
  createListenerPairs,
  createListeners,
  type CreateListenersOptions,
  createUdpListener,
  createUdpListeners,
  type DatagramListener,
  type DrainOptions,
  type FetchApp,
  type FetchInfo,
  formatAddress,
  getAlpn,
  getAuthority,
  getAwsVpceId,
  getAzureLinkId,
  getCrc32c,
  getGcpPscConnectionId,
  getNetns,
  getSsl,
  getUniqueId,
  type HandedSocket,
  handOffConnections,
  type Handover,
  type HandoverChoice,
  hasReusePort,
  type Listener,
  type ListenerPair,
  type ListenerPlan,
  ListenError,
  listenFromPlan,
  type NetAddr,
  parseAddress,
  type PlanAddress,
  planHandover,
  planListeners,
  type PlanOptions,
  type PlanStrategy,
  type PreparedPlan,
  preparePlan,
  probeCapabilities,
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
  type ReloadResult,
  type Runtime,
  type ServeOptions,
  type ServerConfig,
  type ServeTarget,
  serveTargets,
  startSuccessor,
  type StopSignal,
  type Successor,
  type SuccessorOptions,
  successorReady,
  supervise,
  type SuperviseOptions,
  type Supervisor,
  type SupervisorEvent,
  type SupervisorSummary,
  type TcpAddr,
  type UdpAddr,
  type UdpListenersOptions,
  type UnixAddr,
  withProxyProtocol,
  type WorkerContext,
  workerContext,
} from "polybind";

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`consumer: ${what}`);
}

/** Connects to `addr`, sends `text`, and resolves with what came back. */
function roundTrip(addr: TcpAddr, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const socket = createConnection({ host: addr.hostname, port: addr.port }, () => socket.end(text));
    socket.on("data", (d: Uint8Array) => (got += new TextDecoder().decode(d)));
    socket.on("close", () => resolve(got));
    socket.on("error", reject);
  });
}

async function echoOnce(listener: Listener): Promise<void> {
  const conn: Conn = await listener.accept();
  const buf = new Uint8Array(64);
  const n = await conn.read(buf);
  if (n !== null) await conn.write(buf.subarray(0, n));
  await conn.closeWrite();
  conn.close();
}

async function tcp(config: ServerConfig): Promise<void> {
  const listener: Listener = await createListener(config);
  try {
    const addr: Addr = listener.addr;
    check(addr.transport === "tcp", "a TCP address");
    const tcpAddr: TcpAddr = addr;
    const [echoed] = await Promise.all([roundTrip(tcpAddr, "ping"), echoOnce(listener)]);
    check(echoed === "ping", `echo: ${echoed}`);
    try {
      await createListener({ host: tcpAddr.hostname, port: tcpAddr.port });
      check(false, "a second listener on a port in use");
    } catch (err) {
      check(err instanceof ListenError && err.code === "EADDRINUSE", `ListenError: ${err}`);
    }
  } finally {
    await listener.close();
  }
  const options: CreateListenersOptions = { shared: true };
  const many: Listener[] = await createListeners(config, 2, options);
  await Promise.all(many.map((l) => l.close()));
}

async function handOff(config: ServerConfig): Promise<void> {
  const listener = await createListener(config);
  let received = 0;
  const sink: ConnectionSink = {
    emit(_event, socket) {
      received++;
      const native = socket as { destroy?(): void; terminate?(): void };
      if (native.destroy) native.destroy();
      else native.terminate?.();
      return true;
    },
  };
  const done = handOffConnections(listener, sink);
  const addr = listener.addr as TcpAddr;
  const client = createConnection({ host: addr.hostname, port: addr.port });
  client.on("error", () => {});
  for (let waited = 0; received === 0 && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  client.destroy();
  await listener.drain({ idleMs: 10, timeoutMs: 1000 } satisfies DrainOptions);
  await done;
  check(received === 1, `handed off ${received} connections`);
}

async function udp(config: ServerConfig): Promise<void> {
  const socket: DatagramListener = await createUdpListener(config);
  try {
    const addr: UdpAddr = socket.addr;
    const to: NetAddr = addr;
    await socket.send(new TextEncoder().encode("hello"), to);
    const [data, from]: [Uint8Array, NetAddr] = await socket.receive();
    check(new TextDecoder().decode(data) === "hello" && from.transport === "udp", "a UDP datagram");
  } finally {
    await socket.close();
  }
  const options: UdpListenersOptions = { join: false };
  const sockets: DatagramListener[] = await createUdpListeners(config, 2, options);
  await Promise.all(sockets.map((s) => s.close()));
  const pair: ListenerPair = await createListenerPair(config);
  check(pair.tcp.addr.transport === "tcp" && (pair.tcp.addr as TcpAddr).port === pair.udp.addr.port, "a pair");
  await Promise.all([pair.tcp.close(), pair.udp.close()]);
  const pairs: ListenerPair[] = await createListenerPairs(config, 2);
  await Promise.all(pairs.flatMap((p) => [p.tcp.close(), p.udp.close()]));
}

async function unix(): Promise<void> {
  const path = join(tmpdir(), `polybind-consumer-${process.pid}.sock`);
  const listener = await createListener({ uds: path });
  const addr = listener.addr;
  check(addr.transport === "unix", "a Unix address");
  const unixAddr: UnixAddr = addr;
  check(unixAddr.path === path, `Unix path ${unixAddr.path}`);
  await listener.close();
  await cleanupUnixSocket({ uds: path });
}

async function plans(config: ServerConfig): Promise<void> {
  const options: PlanOptions = { shared: false };
  const plan: ListenerPlan = checkPlan(JSON.parse(JSON.stringify(planListeners(config, 1, options))));
  const strategy: PlanStrategy = plan.strategy;
  const address: PlanAddress = plan.address;
  check(strategy === "single" && address.transport === "tcp", `plan ${strategy}`);
  const prepared: PreparedPlan = await preparePlan(plan);
  try {
    const targets: ServeTarget[] = await serveTargets(prepared.plan, 0);
    const serve: ServeOptions = targets[0]!.options;
    check("port" in serve && serve.port > 0, `serve options ${JSON.stringify(serve)}`);
    const listener = await listenFromPlan(prepared.plan, 0);
    await listener.close();
  } finally {
    await prepared.close();
  }
}

/** Every PROXY protocol export: a v2 header with TLVs, read by a listener with the option, and its helpers. */
async function proxy(): Promise<void> {
  const source: ProxyNetEndpoint = { hostname: "203.0.113.7", port: 51000 };
  const tlvs: ProxyTlv[] = [
    { type: ProxyTlvType.ALPN, value: new TextEncoder().encode("h2") },
    { type: ProxyTlvType.AUTHORITY, value: new TextEncoder().encode("example.com") },
    { type: ProxyTlvType.UNIQUE_ID, value: new Uint8Array([1, 2, 3]) },
  ];
  const transport: ProxyTransport = "tcp4";
  const net: ProxyNetHeader = {
    version: 2,
    command: "proxy",
    transport,
    source,
    destination: { hostname: "192.0.2.1", port: 443 },
    tlvs,
  };
  const common: ProxyHeaderCommon = net;
  const unnamed: ProxyUnixEndpoint = { path: "" };
  const unixHeader: ProxyUnixHeader = { ...common, transport: "unix", source: unnamed, destination: unnamed };
  const unspec: ProxyUnspecHeader = { ...common, transport: "unspec" };
  const headers: ProxyHeader[] = [net, unixHeader, unspec];
  const options: BuildProxyHeaderOptions = { crc32c: true };
  const bytes = buildProxyHeader(headers[0]!, options);
  const trusted: ProxyProtocolOptions = { trusted: ["127.0.0.1"], timeoutMs: 2000 };
  const listener = withProxyProtocol(await createListener({ host: "127.0.0.1", port: 0 }), trusted);
  try {
    const client = createConnection({ host: "127.0.0.1", port: (listener.addr as TcpAddr).port });
    client.on("error", () => {});
    client.write(bytes);
    const conn = await listener.accept();
    const info: ProxyInfo | undefined = conn.proxy;
    check(
      info !== undefined && conn.remoteAddr.transport === "tcp" && conn.remoteAddr.hostname === source.hostname,
      "proxy",
    );
    const ssl: ProxySsl | undefined = getSsl(info!);
    check(getAlpn(info!) === "h2" && getAuthority(info!) === "example.com", "PROXY TLVs");
    check(getUniqueId(info!)?.length === 3 && typeof getCrc32c(info!) === "number", "PROXY unique id and CRC32C");
    check(ssl === undefined && getNetns(info!) === undefined && getAwsVpceId(info!) === undefined, "PROXY absent TLVs");
    check(getAzureLinkId(info!) === undefined && getGcpPscConnectionId(info!) === undefined, "PROXY vendor TLVs");
    check(typeof ProxySslSubtype.VERSION === "number", "ProxySslSubtype");
    conn.close();
    client.destroy();
  } finally {
    await listener.close();
  }
}

/** supervise(): a fetch app from a data: module on 2 workers, one request, a graceful stop. */
async function supervised(): Promise<void> {
  const app: FetchApp = { fetch: (_request: Request, _info: FetchInfo) => new Response("typed") };
  check(typeof app.fetch === "function", "FetchApp");
  const events: SupervisorEvent[] = [];
  const options: SuperviseOptions = {
    app: "data:text/javascript,export default { fetch: () => new Response('supervised') }",
    listen: { host: "127.0.0.1", port: 0 },
    workers: 2,
    signals: false,
    onEvent: (event) => events.push(event),
  };
  const server: Supervisor = await supervise(options);
  const addr = server.addrs[0]!;
  const choice: HandoverChoice = server.handover;
  const handover: Handover = choice.handover;
  check(handover === planHandover().handover, "planHandover");
  const reloaded: ReloadResult = await server.reload();
  check(reloaded.ok && reloaded.generation === 2 && server.generation === 2, "supervise reload");
  const stopSignal: StopSignal = "SIGTERM";
  check(stopSignal.length > 0 && successorReady() === false, "successorReady outside a successor");
  const handed: HandedSocket[] = [];
  const successorOptions: SuccessorOptions = { command: [process.execPath, "-e", "0"] };
  const successor: Successor = startSuccessor(handed, successorOptions);
  check(await successor.ready.then(() => false, () => true), "startSuccessor: a process that never says ready");
  check(addr.transport === "tcp", "supervise addrs");
  check(await (await fetch(`http://127.0.0.1:${addr.port}/`)).text() === "supervised", "supervise answers");
  const summary: SupervisorSummary = await server.stop();
  check(summary.code === 0 && events.some((e) => e.type === "stopping"), "supervise stop");
  let outside = false;
  try {
    const context: WorkerContext = workerContext();
    check(context.index >= 0, "workerContext");
  } catch (err) {
    outside = err instanceof TypeError;
  }
  check(outside, "workerContext outside a worker");
}

const caps: Capabilities = capabilities();
check((await probeCapabilities()) === caps, "probeCapabilities");
const runtime: Runtime = caps.runtime;
check(typeof hasReusePort() === "boolean", "hasReusePort");
const config: ServerConfig = parseAddress("127.0.0.1:0");
check(formatAddress(config) === "127.0.0.1:0", `formatAddress: ${formatAddress(config)}`);
await tcp(config);
await handOff(config);
if (caps.udp) await udp(config);
if (caps.unix) await unix();
await plans(config);
await proxy();
await supervised();
console.log(`consumer ok on ${runtime} ${caps.version}`);
