// The Deno adapter: Deno.listen for TCP and Unix sockets, Deno.listenDatagram for UDP. Both
// reusePort and UDP need --unstable-net; without it Deno exits the process on reusePort, so
// the flag is detected ("listenDatagram" in Deno) before anything is tried.

import type { Adapter, RawConn, RawDatagram, RawListener } from "../src/_adapter.ts";
import type { Addr, NetAddr } from "../src/types.ts";
import { denoAdoptFetchServer } from "./_adopt_deno.ts";
import { attempt } from "./_attempt.ts";
import { denoFetchServer } from "./_deno_serve.ts";
import { listenNodeFd } from "./_node_net.ts";
import { nodeShare, nodeShareWorks } from "./_node_share.ts";
import { platform } from "./_posix.ts";
import { peerGone, pullSource } from "./_streams.ts";

/** The parts of Deno's API this adapter uses. */
interface DenoAddr {
  transport: string;
  hostname?: string;
  port?: number;
  path?: string | null;
}

interface DenoConn {
  readonly localAddr: DenoAddr;
  readonly remoteAddr: DenoAddr;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
  setNoDelay?(on?: boolean): void;
  setKeepAlive?(on?: boolean): void;
}

interface DenoListener {
  readonly addr: DenoAddr;
  accept(): Promise<DenoConn>;
  close(): void;
}

interface DenoDatagram {
  readonly addr: DenoAddr;
  receive(p?: Uint8Array): Promise<[Uint8Array, DenoAddr]>;
  send(p: Uint8Array, addr: DenoAddr): Promise<number>;
  close(): void;
}

interface DenoApi {
  version: { deno: string };
  build: { os: string };
  execPath(): string;
  listen(options: Record<string, unknown>): DenoListener;
  listenDatagram?(options: Record<string, unknown>): DenoDatagram;
}

const deno = (): DenoApi => (globalThis as unknown as { Deno: DenoApi }).Deno;

/** Whether Deno runs with --unstable-net (the only way to get reusePort and UDP). */
const unstableNet = (): boolean => typeof deno()?.listenDatagram === "function";

/** Bytes read at a time for `readable`. */
const CHUNK = 64 * 1024;

/** A read's failure: end of stream where the peer has gone (Deno throws ConnectionReset), as on the other runtimes. */
function readFailed(err: unknown): null {
  if (peerGone(err)) return null;
  throw err;
}

/** A Deno.Conn as a raw connection: write() writes all bytes, a gone peer reads as end of stream. */
class DenoRawConn implements RawConn {
  readonly native: DenoConn;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  #closed = false;
  #buffer?: Uint8Array;

  /** Reads the addresses at once: a connection reset before accept throws here (ENOTCONN). */
  constructor(conn: DenoConn) {
    this.native = conn;
    const local = conn.localAddr, remote = conn.remoteAddr;
    this.localAddress = local.hostname;
    this.localPort = local.port;
    this.remoteAddress = remote.hostname;
    this.remotePort = remote.port;
  }

  source(): { source: UnderlyingDefaultSource<Uint8Array>; highWaterMark: number } {
    return pullSource(() => this.#readChunk(), () => this.close());
  }

  #readChunk(): Promise<Uint8Array | null> {
    // One buffer per connection; each chunk is a copy of just the bytes read.
    const buffer = this.#buffer ??= new Uint8Array(CHUNK);
    return this.native.read(buffer).then((n) => n === null ? null : buffer.slice(0, n), readFailed);
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.native.read(p).catch(readFailed);
  }

  write(p: Uint8Array): Promise<number> {
    // Mostly one write takes it all: the loop for the rest runs only after a short write.
    return this.native.write(p).then((n) => n < p.length ? this.#writeRest(p, n) : n);
  }

  async #writeRest(p: Uint8Array, n: number): Promise<number> {
    while (n < p.length) n += await this.native.write(p.subarray(n));
    return n;
  }

  closeWrite(): Promise<void> {
    return this.native.closeWrite();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.native.close();
    } catch {
      // Already closed by its streams.
    }
  }

  setNoDelay(on: boolean): void {
    this.native.setNoDelay?.(on);
  }

  setKeepAlive(on: boolean): void {
    this.native.setKeepAlive?.(on);
  }
}

function wrap<A extends Addr>(listener: DenoListener, addr: A): RawListener<A> {
  let closed = false;
  let pending: Promise<unknown> | undefined;
  return {
    addr,
    native: listener,
    async accept() {
      while (true) {
        const accepting = listener.accept();
        pending = accepting;
        const conn = await accepting;
        try {
          return new DenoRawConn(conn);
        } catch {
          // Reset before it was accepted (ENOTCONN reading its address): drop it, accept the next.
          try {
            conn.close();
          } catch {
            // Already gone.
          }
        }
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      // Deno frees the port only once a pending accept has settled: wait, so that the port is
      // free when close() resolves, as on the other runtimes.
      await pending?.catch(() => {});
    },
  };
}

function wrapDatagram(socket: DenoDatagram): RawDatagram {
  let closed = false;
  return {
    addr: { transport: "udp", hostname: socket.addr.hostname ?? "", port: socket.addr.port ?? 0 },
    native: socket,
    async receive() {
      const [data, from] = await socket.receive();
      return [data, { transport: "udp", hostname: from.hostname ?? "", port: from.port ?? 0 } as NetAddr];
    },
    send: (data, to) => socket.send(data, { transport: "udp", hostname: to.hostname, port: to.port }),
    close() {
      if (!closed) {
        closed = true;
        socket.close();
      }
      return Promise.resolve();
    },
  };
}

/** Whether two Deno.listen sockets bind one port with reusePort (tried for real). */
function tcpReusePortBinds(): boolean {
  if (!unstableNet()) return false;
  let first: DenoListener | undefined;
  try {
    first = deno().listen({ hostname: "127.0.0.1", port: 0, reusePort: true });
    deno().listen({ hostname: "127.0.0.1", port: first.addr.port, reusePort: true }).close();
    return true;
  } catch {
    return false;
  } finally {
    first?.close();
  }
}

let tcpProbe: boolean | undefined;

const OS_NAMES: Record<string, string> = { windows: "win32" };

/** The Deno adapter. */
export const denoAdapter: Adapter = {
  runtime: "deno",
  version: deno()?.version.deno ?? "",
  os: OS_NAMES[deno()?.build.os] ?? deno()?.build.os ?? "",
  listenTcp: ({ hostname, port, backlog, reusePort }) =>
    attempt(() => {
      const l = deno().listen({ hostname, port, tcpBacklog: backlog, ...(reusePort ? { reusePort } : {}) });
      return wrap(l, { transport: "tcp", hostname: l.addr.hostname ?? hostname, port: l.addr.port ?? port });
    }),
  listenUnix: ({ path }) =>
    attempt(() => wrap(deno().listen({ transport: "unix", path }), { transport: "unix", path })),
  listenUdp: ({ hostname, port }) =>
    attempt(() => wrapDatagram(deno().listenDatagram!({ transport: "udp", hostname, port }))),
  // No Deno.* API adopts a descriptor (Deno.listen ignores `fd`); Deno's node:net does.
  listenFd: listenNodeFd,
  platform,
  reusePortBinds(transport) {
    if (transport === "udp") return false;
    return tcpProbe ??= tcpReusePortBinds();
  },
  // Deno.listen binds synchronously, in microseconds: the synchronous probe blocks nothing.
  probeReusePort(transport) {
    return Promise.resolve(this.reusePortBinds(transport));
  },
  get udp() {
    return unstableNet();
  },
  unix: deno()?.build.os !== "windows",
  backlog: true,
  missing: (feature) =>
    feature !== "reusePort.udp" || !unstableNet()
      ? "Deno needs the --unstable-net flag for it"
      : "Deno's UDP sockets have no reusePort option",
  serveKeys: { host: "hostname", path: "path" },
  fetchServer: denoFetchServer,
  adoptFetchServer: denoAdoptFetchServer,
  // Deno's node:net binds a socket without listening and lends it over IPC, as Node.js does.
  ...(nodeShareWorks() ? { share: nodeShare } : {}),
  // Worker processes get --unstable-net, so they bind SO_REUSEPORT even where this one cannot.
  workerProcess: {
    command: () => [deno().execPath(), ["run", "-A", "--unstable-net"]],
    reusePort: deno()?.build.os === "linux",
    ipc: true,
  },
};
