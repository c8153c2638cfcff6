// node:net servers and sockets as polybind's raw listeners and Conns: used by the Node.js
// adapter, by Bun's for inherited descriptors, and by the socket hand-off to child processes.

import { createServer, type Server, type Socket } from "node:net";
import type { RawListener } from "../src/adapter.ts";
import type { Addr, Conn } from "../src/types.ts";
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
export function acceptQueue<A extends Addr>(server: Server, addr: A, unixPath?: string): RawListener<A> {
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

export function listenNet(options: Record<string, unknown>): Promise<Server> {
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
  const server = await listenNet({ fd, backlog });
  const a = server.address() as { address?: unknown; port?: unknown } | string | null;
  if (typeof a === "object" && a !== null && typeof a.address === "string" && typeof a.port === "number") {
    return acceptQueue(server, { transport: "tcp", hostname: a.address, port: a.port });
  }
  // A Unix socket: Node names its path, Bun does not.
  const path = typeof a === "string" ? a : `fd://${fd}`;
  return acceptQueue(server, { transport: "unix", path }, path);
}
