// A Conn over a runtime that pushes incoming bytes (node:net's 'data', Bun's data handler):
// chunks are buffered up to a high-water mark, the socket is paused beyond it, and read()
// pulls from the buffer. Node's and Bun's connections differ only in the hooks below.

import type { Addr, Conn } from "../src/types.ts";
import { readableFrom, writableTo } from "./_streams.ts";

/** Bytes buffered before the socket is paused. */
const HIGH_WATER = 64 * 1024;

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

/** The runtime-specific half of a pushed connection. */
export abstract class PushConn implements Conn {
  readonly localAddr: Addr;
  readonly remoteAddr: Addr;
  readonly #socket: PushSocket;

  /**
   * @param socket The runtime's socket.
   * @param unixPath The listener's path, for a Unix socket connection.
   */
  constructor(socket: PushSocket, unixPath: string | undefined) {
    this.#socket = socket;
    this.localAddr = unixPath !== undefined
      ? { transport: "unix", path: unixPath }
      : { transport: "tcp", hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
    this.remoteAddr = unixPath !== undefined
      ? { transport: "unix", path: "" }
      : { transport: "tcp", hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
  }

  abstract readonly native: unknown;
  /** Writes all of `p`. */
  abstract write(p: Uint8Array): Promise<number>;
  abstract closeWrite(): Promise<void>;

  setNoDelay(on = true): void {
    if (this.localAddr.transport === "tcp") this.#socket.setNoDelay(on);
  }

  setKeepAlive(on = true): void {
    if (this.localAddr.transport === "tcp") this.#socket.setKeepAlive(on);
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
  #wake: (() => void) | undefined;
  #readable?: ReadableStream<Uint8Array>;
  #writable?: WritableStream<Uint8Array>;

  /** Called by the adapter with each incoming chunk. */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered >= HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#notify();
  }

  /** Called by the adapter at end of stream (or when the socket closes). */
  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /** Called by the adapter when the socket fails. */
  fail(err: unknown): void {
    this.#error ??= err;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next buffered chunk (whole), or `null` at end of stream. */
  async readChunk(max = Infinity): Promise<Uint8Array | null> {
    if (!this.#started) {
      this.#started = true;
      this.start();
    }
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended || this.#closed) return null;
      if (this.#paused) {
        this.#paused = false;
        this.#socket.resume();
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    let chunk = this.#chunks[0]!;
    if (chunk.length > max) {
      this.#chunks[0] = chunk.subarray(max);
      chunk = chunk.subarray(0, max);
    } else {
      this.#chunks.shift();
    }
    this.#buffered -= chunk.length;
    if (this.#paused && this.#buffered < HIGH_WATER / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
    return chunk;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const chunk = await this.readChunk(p.length);
    if (chunk === null) return null;
    p.set(chunk);
    return chunk.length;
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= readableFrom(() => this.readChunk(), () => this.close());
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= writableTo((p) => this.write(p), () => this.closeWrite(), () => this.close());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.destroy();
    this.#notify();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
