// What a runtime pushes (node:net's 'connection', Bun's open handler, a datagram handler),
// queued until taken: one implementation for the Node.js and Bun adapters.

import type { RawConn } from "../src/_adapter.ts";
import type { NetAddr } from "../src/types.ts";

/** Holds pushed items until take() asks for them. */
export class PushQueue<T> {
  #queue: T[] = [];
  #waiters: { resolve(item: T): void; reject(e: unknown): void }[] = [];
  #closed: Error | undefined;
  readonly #closedError: () => Error;
  readonly #discard: (item: T) => void;

  /**
   * @param closedError The error take() rejects with once closed.
   * @param discard What to do with items still queued at close.
   */
  constructor(closedError: () => Error, discard: (item: T) => void = () => {}) {
    this.#closedError = closedError;
    this.#discard = discard;
  }

  /** Called by the adapter with each new item; one that comes once closed is discarded, never left waiting. */
  push(item: T): void {
    if (this.#closed) return this.#discard(item);
    const w = this.#waiters.shift();
    if (w) w.resolve(item);
    else this.#queue.push(item);
  }

  /** The next item; rejects once closed. */
  take(): Promise<T> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift()!);
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Rejects waiting takes and discards queued items; true the first time only. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = this.#closedError();
    for (const w of this.#waiters.splice(0)) w.reject(this.#closed);
    for (const item of this.#queue.splice(0)) this.#discard(item);
    return true;
  }
}

/** A queue of accepted connections: those still queued at close are closed. */
export function connQueue(): PushQueue<RawConn> {
  return new PushQueue<RawConn>(() => new Error("Listener closed"), (conn) => conn.close());
}

/** The error of an operation on a closed UDP socket. */
export function udpClosedError(): Error {
  return Object.assign(new Error("UDP socket closed"), { code: "EBADF" });
}

/** A queue of received datagrams. */
export function datagramQueue(): PushQueue<[Uint8Array, NetAddr]> {
  return new PushQueue(udpClosedError);
}
