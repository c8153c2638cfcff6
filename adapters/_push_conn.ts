// A raw connection over a runtime that pushes incoming bytes (node:net's 'data', Bun's data
// handler): chunks are buffered up to a high-water mark, the socket is paused beyond it, and
// read() takes from the buffer or waits for the next push; the readable source is fed by the
// pushes directly. Node's and Bun's connections differ only in the hooks below. The core makes
// the public Conn of it (src/_conn.ts).

import type { RawConn } from "../src/_adapter.ts";
import { peerGone } from "./_streams.ts";
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
export abstract class PushConn implements RawConn {
  readonly #socket: PushSocket;

  /** @param socket The runtime's socket. */
  constructor(socket: PushSocket) {
    this.#socket = socket;
  }

  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.#socket.localPort;
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  abstract readonly native: unknown;
  /** Writes all of `p`. */
  abstract write(p: Uint8Array): Promise<number>;
  abstract closeWrite(): Promise<void>;

  setNoDelay(on: boolean): void {
    this.#socket.setNoDelay(on);
  }

  setKeepAlive(on: boolean): void {
    this.#socket.setKeepAlive(on);
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
  /** Set while the readable source is in use: push() then enqueues into it directly. */
  #controller?: ReadableStreamDefaultController<Uint8Array>;

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

  /**
   * Called by the adapter with `n` bytes of `buf`, a buffer it reuses once this returns: copied
   * straight into the waiting read when there is one and they fit, else kept as a copy.
   */
  pushFrom(buf: Uint8Array, n: number): void {
    const into = this.#into;
    if (into !== undefined && n <= into.length && this.#chunks.length === 0) {
      const resolve = this.#resolve!;
      into.set(n === buf.length ? buf : buf.subarray(0, n));
      this.#nextWaiting();
      resolve(n);
      return;
    }
    this.push(buf.slice(0, n));
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

  /** Whether reading has started (the first read() or source()). */
  protected get started(): boolean {
    return this.#started;
  }

  /**
   * Takes the bytes buffered here and not yet read, and lets the socket flow again: for an
   * adapter handing the socket to a reader of its own. This Conn reads nothing after.
   */
  protected takeBuffered(): Uint8Array[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#buffered = 0;
    this.#ended = true;
    this.#settle();
    this.#resume();
    return chunks;
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
    this.#start();
    if (this.#resolve === undefined) {
      if (this.#chunks.length > 0) return Promise.resolve(this.#take(into));
      if (this.#error !== undefined) return Promise.reject(this.#error);
      if (this.#ended || this.#closed) return Promise.resolve(null);
    }
    this.#resume();
    return new Promise((resolve, reject) => this.#wait(into, resolve, reject));
  }

  /**
   * read() with a callback instead of a promise (no promise, no microtask): `done` gets the
   * number of bytes, `null` at end of stream, or the error (any other value). Called at once
   * when bytes are buffered, else from push(), end(), fail() or close().
   */
  readWith(into: Uint8Array, done: (result: unknown) => void): void {
    this.#start();
    if (this.#resolve === undefined) {
      if (this.#chunks.length > 0) return done(this.#take(into));
      if (this.#error !== undefined) return done(this.#error);
      if (this.#ended || this.#closed) return done(null);
    }
    this.#resume();
    this.#wait(into, done, done);
  }

  #wait(into: Uint8Array, resolve: (value: number | null) => void, reject: (err: unknown) => void): void {
    if (this.#resolve === undefined) {
      this.#into = into;
      this.#resolve = resolve;
      this.#reject = reject;
    } else this.#waiting.push({ into, resolve, reject });
  }

  /**
   * The incoming bytes as a source the socket pushes into (no promise a chunk on our side):
   * what read() had buffered comes first; the socket pauses while the stream is full.
   */
  source(): { source: UnderlyingDefaultSource<Uint8Array>; highWaterMark: number } {
    return {
      highWaterMark: READABLE_CHUNKS,
      source: {
        start: (controller) => {
          for (const chunk of this.#chunks.splice(0)) controller.enqueue(chunk);
          this.#buffered = 0;
          this.#controller = controller;
          this.#settle();
          this.#start();
        },
        pull: () => this.#resume(),
        cancel: () => this.close(),
      },
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.destroy();
    this.#settle();
  }
}
