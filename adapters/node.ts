// The Node.js adapter: node:net servers and sockets, node:dgram for UDP.

import type { ChildProcess } from "node:child_process";
import { createServer, Server, type Socket } from "node:net";
import process from "node:process";
import type { Adapter, RawListener } from "../src/adapter.ts";
import type { Addr, Conn } from "../src/types.ts";
import { listenDgram } from "./_dgram.ts";
import { reusePortBindsInChild } from "./_probe_child.ts";
import { lookupAll, posixFs, processInfo } from "./_posix.ts";
import { PushConn } from "./_push_conn.ts";

/** A node:net socket as a Conn. */
export class NodeConn extends PushConn {
  readonly native: Socket;
  readonly localAddr: Addr;
  readonly remoteAddr: Addr;

  constructor(socket: Socket, unixPath: string | undefined) {
    super();
    this.native = socket;
    this.localAddr = unixPath !== undefined
      ? { transport: "unix", path: unixPath }
      : { transport: "tcp", hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
    this.remoteAddr = unixPath !== undefined
      ? { transport: "unix", path: "" }
      : { transport: "tcp", hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    socket.on("error", (err) => this.fail(err));
  }

  /** Listens for data only once read: until then `native` can be handed to an http.Server untouched. */
  protected override start(): void {
    const socket = this.native;
    socket.on("data", (chunk: Buffer) => this.push(chunk));
    socket.on("end", () => this.end());
    socket.on("close", () => this.end());
    if (socket.destroyed) this.end();
  }

  write(p: Uint8Array): Promise<number> {
    const socket = this.native;
    if (socket.destroyed || socket.writableEnded) {
      return Promise.reject(Object.assign(new Error("Connection is closed for writing"), { code: "EPIPE" }));
    }
    if (socket.write(p)) return Promise.resolve(p.length);
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        socket.off("drain", onDrain);
        socket.off("close", onClose);
        err ? reject(err) : resolve(p.length);
      };
      const onDrain = () => done();
      const onClose = () => done(Object.assign(new Error("Connection closed while writing"), { code: "EPIPE" }));
      socket.once("drain", onDrain);
      socket.once("close", onClose);
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.native.end(() => resolve()));
  }

  setNoDelay(on = true): void {
    if (this.localAddr.transport === "tcp") this.native.setNoDelay(on);
  }

  setKeepAlive(on = true): void {
    if (this.localAddr.transport === "tcp") this.native.setKeepAlive(on);
  }

  protected pause(): void {
    this.native.pause();
  }

  protected resume(): void {
    this.native.resume();
  }

  protected destroy(): void {
    this.native.destroy();
  }
}

/** Queues a server's connections for accept(). */
function acceptQueue<A extends Addr>(server: Server, addr: A, unixPath?: string): RawListener<A> {
  const queue: Conn[] = [];
  const waiters: { resolve(c: Conn): void; reject(e: unknown): void }[] = [];
  let closed: Error | undefined;
  server.on("connection", (socket: Socket) => {
    const conn = new NodeConn(socket, unixPath);
    const w = waiters.shift();
    if (w) w.resolve(conn);
    else queue.push(conn);
  });
  return {
    addr,
    native: server,
    accept() {
      const conn = queue.shift();
      if (conn) return Promise.resolve(conn);
      if (closed) return Promise.reject(closed);
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    close() {
      if (closed) return Promise.resolve();
      closed = new Error("Listener closed");
      for (const w of waiters.splice(0)) w.reject(closed);
      for (const c of queue.splice(0)) c.close();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function listen(options: Record<string, unknown>): Promise<Server> {
  const server = createServer({ allowHalfOpen: true });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ ...options, exclusive: true }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

/** Listens with node:net on an inherited descriptor (also used by the Bun adapter). */
export async function listenNodeFd({ fd, backlog }: { fd: number; backlog: number }): Promise<RawListener<Addr>> {
  const server = await listen({ fd, backlog });
  const a = server.address() as { address?: unknown; port?: unknown } | string | null;
  if (typeof a === "object" && a !== null && typeof a.address === "string" && typeof a.port === "number") {
    return acceptQueue(server, { transport: "tcp", hostname: a.address, port: a.port });
  }
  // A Unix socket: Node names its path, Bun does not.
  const path = typeof a === "string" ? a : `fd://${fd}`;
  return acceptQueue(server, { transport: "unix", path }, path);
}

const probed = new Map<"tcp" | "udp", boolean>();

/** The Node.js adapter. */
export const nodeAdapter: Adapter = {
  runtime: "node",
  version: process.versions.node,
  os: process.platform,
  async listenTcp({ hostname, port, backlog, reusePort }) {
    const server = await listen({ host: hostname, port, backlog, ...(reusePort ? { reusePort } : {}) });
    const a = server.address() as { address: string; port: number };
    return acceptQueue(server, { transport: "tcp", hostname: a.address, port: a.port });
  },
  async listenUnix({ path, backlog }) {
    const server = await listen({ path, backlog });
    return acceptQueue(server, { transport: "unix", path }, path);
  },
  listenUdp: listenDgram,
  listenFd: listenNodeFd,
  lookup: lookupAll,
  ...processInfo,
  reusePortBinds(transport) {
    if (!probed.has(transport)) probed.set(transport, reusePortBindsInChild(transport));
    return probed.get(transport)!;
  },
  udp: true,
  unix: process.platform !== "win32",
  backlog: true,
  missing: (feature) =>
    feature === "udp"
      ? "UDP is always available on Node.js"
      : `Node.js ${process.versions.node} ignores reusePort (it needs 22.12 or 23.1 and later)`,
  fs: posixFs,
  serveUnixKey: "path",
  handOff: {
    send(child, native, addr) {
      (child as ChildProcess).send({ polybind: "listener", addr }, native as Server);
    },
    receive(timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          process.off("message", onMessage);
          reject(new Error(`No listening socket arrived from the parent process within ${timeoutMs} ms`));
        }, timeoutMs);
        const onMessage = (message: unknown, handle: unknown) => {
          const m = message as { polybind?: string; addr?: Addr } | null;
          if (m?.polybind !== "listener" || !(handle instanceof Server) || !m.addr) return;
          clearTimeout(timer);
          process.off("message", onMessage);
          resolve(acceptQueue(handle, m.addr, m.addr.transport === "unix" ? m.addr.path : undefined));
        };
        process.on("message", onMessage);
      });
    },
  },
};
