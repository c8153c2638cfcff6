// The Bun adapter: Bun.listen for TCP and Unix sockets, node:dgram for UDP (Bun.udpSocket has
// no reusePort, Bun's node:dgram does).

import process from "node:process";
import type { Adapter, RawListener } from "../src/_adapter.ts";
import type { Addr, TcpAddr } from "../src/types.ts";
import { listenBunUdp } from "./_bun_udp.ts";
import { bunAdoptFetchServer } from "./_adopt_bun.ts";
import { bunFetchServer } from "./_bun_serve.ts";
import { listenDgram } from "./_dgram.ts";
import { reusePortBindsHere, reusePortBindsInChild } from "./_reuseport_probe.ts";
import { connQueue } from "./_push_queue.ts";
import { attempt } from "./_attempt.ts";
import { platform } from "./_posix.ts";
import { PushConn } from "./_push_conn.ts";
import { listenNodeFd } from "./_node_net.ts";
import { bunShare } from "./_bun_share.ts";

/** The part of a Bun socket this adapter uses. */
interface BunSocket {
  data: BunConn | undefined;
  write(data: Uint8Array): number;
  shutdown(): void;
  end(): void;
  terminate(): void;
  close(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on: boolean): boolean;
  setKeepAlive(on: boolean, delay?: number): boolean;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

interface BunListener {
  readonly hostname?: string;
  readonly port?: number;
  stop(closeActiveConnections?: boolean): void;
}

interface BunApi {
  version: string;
  listen(options: Record<string, unknown>): BunListener;
}

const bun = (): BunApi => (globalThis as unknown as { Bun: BunApi }).Bun;

/** A Bun socket as a raw connection. */
export class BunConn extends PushConn {
  readonly native: BunSocket;
  #writing: Promise<unknown> = Promise.resolve();
  #drained: (() => void) | undefined;
  #gone = false;

  constructor(socket: BunSocket) {
    super(socket);
    this.native = socket;
  }

  /** Called from Bun's drain handler. */
  drained(): void {
    const d = this.#drained;
    this.#drained = undefined;
    d?.();
  }

  /** Called from Bun's close handler. */
  gone(): void {
    this.#gone = true;
    this.end();
    this.drained();
  }

  async #writeAll(p: Uint8Array): Promise<number> {
    let rest = p;
    while (rest.length > 0) {
      const n = this.#gone ? -1 : this.native.write(rest);
      if (n < 0) throw Object.assign(new Error("Connection is closed for writing"), { code: "EPIPE" });
      rest = rest.subarray(n);
      if (rest.length > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    }
    return p.length;
  }

  write(p: Uint8Array): Promise<number> {
    const done = this.#writing.then(() => this.#writeAll(p));
    this.#writing = done.catch(() => {});
    return done;
  }

  async closeWrite(): Promise<void> {
    await this.#writing;
    if (!this.#gone) this.native.shutdown();
  }

  protected destroy(): void {
    if (!this.#gone) this.native.close();
  }
}

/** Binds with Bun.listen and queues connections for accept(). */
function listen<A extends Addr>(
  options: Record<string, unknown>,
  addrOf: (l: BunListener) => A,
): RawListener<A> {
  const queue = connQueue();
  const listener = bun().listen({
    ...options,
    allowHalfOpen: true,
    socket: {
      binaryType: "uint8array",
      open(socket: BunSocket) {
        const conn = new BunConn(socket);
        socket.data = conn;
        queue.push(conn);
      },
      data: (socket: BunSocket, chunk: Uint8Array) => socket.data?.push(chunk),
      drain: (socket: BunSocket) => socket.data?.drained(),
      end: (socket: BunSocket) => socket.data?.end(),
      close: (socket: BunSocket) => socket.data?.gone(),
      error: (socket: BunSocket, err: unknown) => socket.data?.fail(err),
    },
  });
  return {
    addr: addrOf(listener),
    native: listener,
    accept: () => queue.take(),
    acceptWith: (ok, fail) => queue.takeWith(ok, fail),
    close() {
      if (queue.close()) listener.stop(false);
      return Promise.resolve();
    },
  };
}

function tcpAddr(l: BunListener): TcpAddr {
  return { transport: "tcp", hostname: l.hostname ?? "", port: l.port ?? 0 };
}

/** Whether two Bun.listen sockets bind one port with reusePort (tried for real). */
function tcpReusePortBinds(): boolean {
  const opts = { hostname: "127.0.0.1", reusePort: true, socket: { data() {} } };
  let first: BunListener | undefined;
  try {
    first = bun().listen({ ...opts, port: 0 });
    bun().listen({ ...opts, port: first.port }).stop(true);
    return true;
  } catch {
    return false;
  } finally {
    first?.stop(true);
  }
}

const probed = new Map<"tcp" | "udp", boolean>();

/** The Bun adapter. */
export const bunAdapter: Adapter = {
  runtime: "bun",
  version: bun()?.version ?? "",
  os: process.platform,
  listenTcp: ({ hostname, port, reusePort }) =>
    attempt(() => listen({ hostname, port, reusePort, exclusive: !reusePort }, tcpAddr)),
  listenUnix: ({ path }) => attempt(() => listen({ unix: path }, () => ({ transport: "unix" as const, path }))),
  // Bun.udpSocket is faster than Bun's node:dgram, which is kept for sockets sharing a port.
  listenUdp: (opts) => (opts.reusePort ? listenDgram(opts) : listenBunUdp(opts)),
  // Bun.listen takes an `fd` (undocumented) but reports no address for it; Bun's node:net does.
  listenFd: listenNodeFd,
  platform,
  // Bun.listen binds synchronously; UDP sharing goes through node:dgram, which binds asynchronously.
  probeReusePort: (transport) => transport === "tcp" ? Promise.resolve(tcpReusePortBinds()) : reusePortBindsHere("udp"),
  reusePortBinds(transport) {
    if (!probed.has(transport)) {
      probed.set(transport, transport === "tcp" ? tcpReusePortBinds() : reusePortBindsInChild("udp"));
    }
    return probed.get(transport)!;
  },
  udp: true,
  unix: process.platform !== "win32",
  backlog: false,
  missing: (feature) =>
    feature === "udp"
      ? "UDP is always available on Bun"
      : `${feature === "reusePort.tcp" ? "Bun.listen" : "node:dgram"} of Bun ${bun()?.version} did not share a port`,
  serveKeys: { host: "hostname", path: "unix" },
  fetchServer: bunFetchServer,
  adoptFetchServer: bunAdoptFetchServer,
  // Sockets made with the C library, inherited by the worker processes (Linux).
  ...(bunShare ? { share: bunShare } : {}),
  workerProcess: { command: () => [process.execPath, []], reusePort: false, ipc: false },
};
