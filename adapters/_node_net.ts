// node:net servers and sockets as polybind's raw listeners and connections: used by the Node.js
// adapter, by Bun's for inherited descriptors, and by the socket hand-off to child processes.

import { Buffer } from "node:buffer";
import { createServer, type Server, Socket } from "node:net";
import type { RawListener } from "../src/_adapter.ts";
import type { Addr } from "../src/types.ts";
import { connQueue } from "./_push_queue.ts";
import { PushConn } from "./_push_conn.ts";

/** node:net's own keys for a socket that reads into its caller's buffer. */
interface OnreadKeys {
  buffer: symbol;
  callback: symbol;
}

/** What {@linkcode onread} found: undefined until first asked, null where there are none. */
let onreadKeys: OnreadKeys | null | undefined;

/**
 * node:net's own keys for a socket that reads into its caller's buffer (the `onread` option of
 * `new net.Socket()`, which accepted sockets cannot be given): found on a socket made with it,
 * once, when the first connection starts reading (not at import: a process that never reads a
 * node:net connection, such as a Bun.serve worker, makes no socket for it). Where they exist
 * (Node.js, Deno) and the handle takes a buffer, a read lands in one buffer shared by every
 * connection and is copied from it before the callback returns, with no `Buffer` and no stream
 * machinery a chunk. Elsewhere (Bun), 'data' events.
 */
function onread(): OnreadKeys | undefined {
  if (onreadKeys === undefined) {
    const options = { onread: { buffer: new Uint8Array(1), callback: () => true } };
    const probe = new Socket(options as ConstructorParameters<typeof Socket>[0]);
    const keys = Object.getOwnPropertySymbols(probe);
    const buffer = keys.find((k) => k.description === "kBuffer");
    const callback = keys.find((k) => k.description === "kBufferCb");
    probe.destroy();
    onreadKeys = buffer && callback ? { buffer, callback } : null;
  }
  return onreadKeys ?? undefined;
}

/** The one buffer every node:net connection reads into (see `onread`). */
const READ_BUFFER = new Uint8Array(64 * 1024);

interface UserBufferHandle {
  useUserBuffer?(buffer: Uint8Array): void;
  readonly reading?: boolean;
}

/** What a node:net handle's getpeername() fills in (and returns a non-zero error code when it fails). */
interface PeerName {
  address?: string;
  port?: number;
}

interface PeerNameHandle {
  getpeername?(out: PeerName): number;
}

/**
 * The one object every connection's getpeername() fills in: node:net's `remoteAddress` gives
 * the handle a new object each time, whose three properties the handle then adds one by one.
 */
const PEER_NAME: PeerName = { address: "", family: "", port: 0 } as PeerName;

/** The error of a write on a connection closed for writing. */
function closedForWriting(): Error {
  return Object.assign(new Error("Connection is closed for writing"), { code: "EPIPE" });
}

/** What an empty write writes. */
const EMPTY = new Uint8Array(0);

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
    const handle = (socket as unknown as { _handle?: UserBufferHandle })._handle;
    const keys = typeof handle?.useUserBuffer === "function" ? onread() : undefined;
    if (handle !== undefined && keys !== undefined) {
      // What the socket read before: first.
      if (socket.readableLength > 0) {
        for (let chunk: Buffer | null; (chunk = socket.read()) !== null;) this.push(chunk);
      }
      const fields = socket as unknown as Record<symbol, unknown>;
      fields[keys.buffer] = READ_BUFFER;
      fields[keys.callback] = (n: number, buf: Uint8Array) => this.pushFrom(buf, n);
      handle.useUserBuffer!(READ_BUFFER);
      // An accepted socket reads from the start, unless its stream buffer filled up.
      if (handle.reading !== true) socket.resume();
    } else socket.on("data", this.#onData);
    socket.on("end", () => this.end());
    socket.on("close", () => this.end());
    if (socket.readableEnded || socket.destroyed) this.end();
  }

  readonly #onData = (chunk: Buffer): void => this.push(chunk);

  #peerAddress: string | undefined;
  #peerPort: number | undefined;

  /** Asks the handle once (one getpeername), as node:net does, but into one reused object. */
  #askPeer(): void {
    const handle = (this.native as unknown as { _handle?: PeerNameHandle })._handle;
    if (typeof handle?.getpeername === "function" && handle.getpeername(PEER_NAME) === 0) {
      this.#peerAddress = PEER_NAME.address;
      this.#peerPort = PEER_NAME.port;
    }
  }

  override get remoteAddress(): string | undefined {
    if (this.#peerAddress === undefined) this.#askPeer();
    return this.#peerAddress ?? this.native.remoteAddress;
  }

  override get remotePort(): number | undefined {
    if (this.#peerAddress === undefined) this.#askPeer();
    return this.#peerPort ?? this.native.remotePort;
  }

  /**
   * Gives the socket back to a reader of its own (an http.Server): `first`, then what was read
   * and not taken, are its first bytes, and its reads reach its stream again. A socket that read
   * into the shared buffer cannot leave it (the handle keeps it): each read is then copied into
   * a `Buffer` and pushed, as node:net itself does, with the same back-pressure.
   *
   * @param first Bytes that come before anything this Conn buffered.
   */
  release(first?: Uint8Array): void {
    const socket = this.native;
    const back = this.started ? this.takeBuffered() : [];
    if (first !== undefined && first.length > 0) back.unshift(first);
    // Only a socket started with the shared buffer has it, and by then the keys are known.
    if (onreadKeys) {
      const fields = socket as unknown as Record<symbol, unknown>;
      if (fields[onreadKeys.buffer] === READ_BUFFER) {
        fields[onreadKeys.callback] = (n: number, buf: Uint8Array) => socket.push(Buffer.from(buf.subarray(0, n)));
      }
    }
    socket.off("data", this.#onData);
    for (let i = back.length - 1; i >= 0; i--) socket.unshift(back[i]);
  }

  /**
   * Writes all of `p`; resolves once node:net holds nothing of it, so the caller may reuse it
   * (node:net keeps a reference, not a copy, of what the kernel did not take at once).
   */
  write(p: Uint8Array): Promise<number> {
    const socket = this.native;
    if (socket.destroyed || socket.writableEnded) return Promise.reject(closedForWriting());
    socket.write(p);
    // The kernel took it all: nothing of `p` is held.
    if (socket.writableLength === 0 && !socket.destroyed) return Promise.resolve(p.length);
    if (socket.destroyed) return Promise.reject(socket.errored ?? closedForWriting());
    // node:net calls write callbacks in order: an empty write's comes once `p` is sent.
    return new Promise((resolve, reject) => socket.write(EMPTY, (err) => err ? reject(err) : resolve(p.length)));
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
    acceptWith: (ok, fail) => queue.takeWith(ok, fail),
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
