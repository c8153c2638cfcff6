// A Conn over a runtime that pushes incoming bytes (node:net's 'data', Bun's data handler):
// chunks are buffered up to a high-water mark, the socket is paused beyond it, and read()
// takes from the buffer or waits for the next push; `readable` is fed by the pushes directly. Node's and Bun's connections differ only in the hooks below.

import type { Addr, Conn } from "../src/types.ts";
import { peerGone, readableTaken, writableTo } from "./_streams.ts";

/** Bytes buffered before the socket is paused. */
const HIGH_WATER = 64 * 1024;

/** Chunks `readable` queues before the socket is paused. */
const READABLE_CHUNKS = 8;

/** What node:net sockets and Bun sockets have alike. */
export interface PushSocket {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  pause(): unknown;
  resume(): unknown;
  setNoDelay(on: boolean): unknown;
  setKeepAlive(on: boolean): unknown;
}

/** A read() waiting for bytes. */
interface PendingRead {
  into: Uint8Array;
  resolve(value: number | null): void;
  reject(err: unknown): void;
}

/** The runtime-specific half of a pushed connection. */
export abstract class PushConn implements Conn {
  readonly #socket: PushSocket;
  readonly #unixPath: string | undefined;
  #localAddr?: Addr;
  #remoteAddr?: Addr;

  /**
   * @param socket The runtime's socket.
   * @param unixPath The listener's path, for a Unix socket connection.
   */
  constructor(socket: PushSocket, unixPath: string | undefined) {
    this.#socket = socket;
    this.#unixPath = unixPath;
  }

  /** Asked of the socket on first use, not at accept: on node:net each is a system call. */
  get localAddr(): Addr {
    const s = this.#socket;
    return this.#localAddr ??= this.#unixPath !== undefined
      ? { transport: "unix", path: this.#unixPath }
      : { transport: "tcp", hostname: s.localAddress ?? "", port: s.localPort ?? 0 };
  }

  /** Asked of the socket on first use, like {@linkcode localAddr}. */
  get remoteAddr(): Addr {
    const s = this.#socket;
    return this.#remoteAddr ??= this.#unixPath !== undefined
      ? { transport: "unix", path: "" }
      : { transport: "tcp", hostname: s.remoteAddress ?? "", port: s.remotePort ?? 0 };
  }

  abstract readonly native: unknown;
  /** Writes all of `p`. */
  abstract write(p: Uint8Array): Promise<number>;
  abstract closeWrite(): Promise<void>;

  setNoDelay(on = true): void {
    if (this.#unixPath === undefined) this.#socket.setNoDelay(on);
  }

  setKeepAlive(on = true): void {
    if (this.#unixPath === undefined) this.#socket.setKeepAlive(on);
  }

  /** Closes the socket at once. */
  protected abstract destroy(): void;
  /** Starts the flow of incoming bytes, on the first read (until then the socket is untouched). */
  protected start(): void {}

  #started = false;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #paused = false;
  #ended = false;
  #error: unknown = undefined;
  #closed = false;
  /** Reads waiting for bytes, settled straight from push(), end(), fail() and close(). */
  #waiting: PendingRead[] = [];
  /** The first waiting read, held apart from #waiting: the usual case needs no record. */
  #into: Uint8Array | undefined;
  #resolve: ((value: number | null) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  #readable?: ReadableStream<Uint8Array>;
  /** Set while `readable` is in use: push() then enqueues into it directly. */
  #controller?: ReadableStreamDefaultController<Uint8Array>;
  #writable?: WritableStream<Uint8Array>;

  /** Called by the adapter with each incoming chunk. */
  push(chunk: Uint8Array): void {
    const controller = this.#controller;
    if (controller !== undefined) {
      controller.enqueue(chunk);
      if (controller.desiredSize! <= 0) this.#pause();
      return;
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#resolve !== undefined) this.#settle();
    else if (this.#buffered >= HIGH_WATER) this.#pause();
  }

  /** Called by the adapter at end of stream (or when the socket closes). */
  end(): void {
    this.#ended = true;
    this.#settle();
  }

  /** Called by the adapter when the socket fails; a peer that reset is end of stream, not an error. */
  fail(err: unknown): void {
    if (peerGone(err)) return this.end();
    this.#error ??= err;
    this.#settle();
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#socket.resume();
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.start();
  }

  /** Settles waiting reads from the buffer, else with the error or end of stream; ends `readable`. */
  #settle(): void {
    while (this.#resolve !== undefined) {
      const hasBytes = this.#chunks.length > 0;
      if (!hasBytes && this.#error === undefined && !this.#ended && !this.#closed) break;
      const resolve = this.#resolve, reject = this.#reject!, into = this.#into!;
      this.#nextWaiting();
      if (hasBytes) resolve(this.#take(into));
      else if (this.#error !== undefined) reject(this.#error);
      else resolve(null);
    }
    const controller = this.#controller;
    if (controller === undefined || !(this.#ended || this.#closed || this.#error !== undefined)) return;
    this.#controller = undefined;
    try {
      if (this.#error !== undefined) controller.error(this.#error);
      else controller.close();
    } catch {
      // Cancelled by the reader.
    }
  }

  /** Moves the next waiting read, if any, into the first slot. */
  #nextWaiting(): void {
    const read = this.#waiting.shift();
    this.#into = read?.into;
    this.#resolve = read?.resolve;
    this.#reject = read?.reject;
  }

  /** Copies the next buffered bytes into `into`, as many as fit. */
  #take(into: Uint8Array): number {
    let chunk = this.#chunks[0]!;
    if (chunk.length > into.length) {
      this.#chunks[0] = chunk.subarray(into.length);
      chunk = chunk.subarray(0, into.length);
    } else {
      this.#chunks.shift();
    }
    this.#buffered -= chunk.length;
    if (this.#buffered < HIGH_WATER / 2) this.#resume();
    into.set(chunk);
    return chunk.length;
  }

  /** The next bytes: at once when buffered, else one promise that push() settles. */
  read(into: Uint8Array): Promise<number | null> {
    if (this.#readable !== undefined) return readableTaken();
    this.#start();
    if (this.#resolve === undefined) {
      if (this.#chunks.length > 0) return Promise.resolve(this.#take(into));
      if (this.#error !== undefined) return Promise.reject(this.#error);
      if (this.#ended || this.#closed) return Promise.resolve(null);
    }
    this.#resume();
    return new Promise((resolve, reject) => {
      if (this.#resolve === undefined) {
        this.#into = into;
        this.#resolve = resolve;
        this.#reject = reject;
      } else this.#waiting.push({ into, resolve, reject });
    });
  }

  /**
   * The incoming bytes as a stream the socket pushes into (no promise a chunk on our side):
   * what read() had buffered comes first; the socket pauses while the stream is full.
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream<Uint8Array>({
      start: (controller) => {
        for (const chunk of this.#chunks.splice(0)) controller.enqueue(chunk);
        this.#buffered = 0;
        this.#controller = controller;
        this.#settle();
        this.#start();
      },
      pull: () => this.#resume(),
      cancel: () => this.close(),
    }, { highWaterMark: READABLE_CHUNKS });
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= writableTo((p) => this.write(p), () => this.closeWrite(), () => this.close());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.destroy();
    this.#settle();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
