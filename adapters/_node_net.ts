// node:net servers and sockets as polybind's raw listeners and connections: used by the Node.js
// adapter, by Bun's for inherited descriptors, and by the socket hand-off to child processes.

import { createServer, type Server, type Socket } from "node:net";
import type { RawListener } from "../src/_adapter.ts";
import type { Addr } from "../src/types.ts";
import { connQueue } from "./_push_queue.ts";
import { PushConn } from "./_push_conn.ts";

/** A node:net socket as a raw connection. */
export class NodeConn extends PushConn {
  readonly native: Socket;

  constructor(socket: Socket) {
    super(socket);
    this.native = socket;
    socket.on("error", (err) => this.fail(err));
  }

  /**
   * Listens for data only once read: until then `native` can be handed to an http.Server
   * untouched. A socket whose peer left before that has already emitted its 'end' (or closed),
   * and emits nothing to listeners added now: it is ended here.
   */
  protected override start(): void {
    const socket = this.native;
    socket.on("data", (chunk: Buffer) => this.push(chunk));
    socket.on("end", () => this.end());
    socket.on("close", () => this.end());
    if (socket.readableEnded || socket.destroyed) this.end();
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

  protected destroy(): void {
    this.native.destroy();
  }
}

/** Queues a server's connections for accept(). */
export function acceptQueue<A extends Addr>(server: Server, addr: A): RawListener<A> {
  const queue = connQueue();
  server.on("connection", (socket: Socket) => queue.push(new NodeConn(socket)));
  return {
    addr,
    native: server,
    accept: () => queue.take(),
    close() {
      // server.close() closes the listening socket before it returns (libuv closes the descriptor
      // at once), freeing the port or path; its callback would wait for every open connection.
      if (queue.close()) server.close();
      return Promise.resolve();
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
  return acceptQueue(server, { transport: "unix", path });
}
