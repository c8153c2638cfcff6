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

type Datagram = [Uint8Array, NetAddr];

interface DatagramWaiter {
  resolve(value: Datagram | IteratorResult<Datagram, undefined>): void;
  reject(err: unknown): void;
  /** Wants an iterator result (step) rather than the datagram itself (take). */
  step: boolean;
}

const ENDED: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * Received datagrams until taken, as they are (take) or as iterator results (step): a waiting
 * step is resolved with its result at once, one promise a datagram where take().then() costs
 * two and a microtask more. The oldest waiter lives in fields of its own, so that a loop's one
 * waiting step costs no object.
 */
export class DatagramQueue {
  #queue: Datagram[] = [];
  #resolve: DatagramWaiter["resolve"] | undefined;
  #reject: DatagramWaiter["reject"] = () => {};
  #step = false;
  /** Waiters after the oldest, in order. */
  #later: DatagramWaiter[] = [];
  #closed: Error | undefined;
  #ended = false;

  /** Called by the adapter with each datagram; one that comes once closed is dropped. */
  push(item: Datagram): void {
    const resolve = this.#resolve;
    if (resolve === undefined) {
      if (this.#closed === undefined) this.#queue.push(item);
      return;
    }
    const step = this.#step;
    this.#next();
    resolve(step ? { value: item, done: false } : item);
  }

  /** The next datagram; rejects once closed. */
  take(): Promise<Datagram> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift()!);
    if (this.#closed) return Promise.reject(this.#closed);
    return this.#wait(false) as Promise<Datagram>;
  }

  /** The next datagram as an iterator result: done once ended, rejecting once closed otherwise. */
  step(): Promise<IteratorResult<Datagram, undefined>> {
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift()!, done: false });
    if (this.#closed) return this.#ended ? Promise.resolve(ENDED) : Promise.reject(this.#closed);
    return this.#wait(true) as Promise<IteratorResult<Datagram, undefined>>;
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Drops queued datagrams; takes reject from now on, and steps too unless `ended` (the socket
   * was closed by its owner, which ends an iteration quietly). True the first time only.
   */
  close(ended = false): boolean {
    if (this.#closed) return false;
    this.#closed = udpClosedError();
    this.#ended = ended;
    this.#queue.length = 0;
    while (this.#resolve !== undefined) {
      const resolve = this.#resolve, reject = this.#reject, step = this.#step;
      this.#next();
      if (step && ended) resolve(ENDED);
      else reject(this.#closed);
    }
    return true;
  }

  #wait(step: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#resolve === undefined) {
        this.#resolve = resolve;
        this.#reject = reject;
        this.#step = step;
      } else {
        this.#later.push({ resolve, reject, step });
      }
    });
  }

  /** Hands the oldest waiter's place to the next one, if any. */
  #next(): void {
    // Most often nobody else waits: no shift() of an empty array (a builtin call per datagram).
    const w = this.#later.length === 0 ? undefined : this.#later.shift()!;
    this.#resolve = w?.resolve;
    if (w) {
      this.#reject = w.reject;
      this.#step = w.step;
    }
  }
}

/** A queue of received datagrams. */
export function datagramQueue(): DatagramQueue {
  return new DatagramQueue();
}
