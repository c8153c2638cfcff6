// What a runtime pushes (node:net's 'connection', Bun's open handler, a datagram handler),
// queued until taken: one implementation for connections and datagrams, on Node.js and Bun.

import type { RawConn } from "../src/_adapter.ts";
import type { NetAddr } from "../src/types.ts";

interface Waiter<T> {
  resolve(value: T | IteratorResult<T, undefined>): void;
  reject(err: unknown): void;
  /** Wants an iterator result (step) rather than the item itself (take). */
  step: boolean;
}

const ENDED: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * Holds pushed items until taken, as they are (take) or as iterator results (step): a waiting
 * step is resolved with its result at once, one promise an item where take().then() costs two
 * and a microtask more. The oldest waiter lives in fields of its own, so that a loop's one
 * waiting take or step costs no object.
 */
export class PushQueue<T> {
  #queue: T[] = [];
  #resolve: Waiter<T>["resolve"] | undefined;
  #reject: Waiter<T>["reject"] = () => {};
  #step = false;
  /** Waiters after the oldest, in order. */
  #later: Waiter<T>[] = [];
  #closed: Error | undefined;
  #ended = false;
  readonly #closedError: () => Error;
  readonly #discard: (item: T) => void;

  /**
   * @param closedError The error take() (and step(), unless ended) rejects with once closed.
   * @param discard What to do with items still queued at close, and with those pushed after.
   */
  constructor(closedError: () => Error, discard: (item: T) => void = () => {}) {
    this.#closedError = closedError;
    this.#discard = discard;
  }

  /** Called by the adapter with each new item; one that comes once closed is discarded, never left waiting. */
  push(item: T): void {
    const resolve = this.#resolve;
    if (resolve === undefined) {
      if (this.#closed === undefined) this.#queue.push(item);
      else this.#discard(item);
      return;
    }
    const step = this.#step;
    this.#next();
    resolve(step ? { value: item, done: false } : item);
  }

  /** The next item; rejects once closed. */
  take(): Promise<T> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift()!);
    if (this.#closed) return Promise.reject(this.#closed);
    return this.#wait(false) as Promise<T>;
  }

  /**
   * take() with callbacks, no promise: `ok` with the next item (at once, before this returns,
   * where one is queued), or `fail` once closed.
   */
  takeWith(ok: (item: T) => void, fail: (err: unknown) => void): void {
    if (this.#queue.length > 0) return ok(this.#queue.shift()!);
    if (this.#closed) return fail(this.#closed);
    this.#enlist(ok as Waiter<T>["resolve"], fail, false);
  }

  /** The next item as an iterator result: done once ended, rejecting once closed otherwise. */
  step(): Promise<IteratorResult<T, undefined>> {
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift()!, done: false });
    if (this.#closed) return this.#ended ? Promise.resolve(ENDED) : Promise.reject(this.#closed);
    return this.#wait(true) as Promise<IteratorResult<T, undefined>>;
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Discards queued items; takes reject from now on, and steps too unless `ended` (the socket
   * was closed by its owner, which ends an iteration quietly). True the first time only.
   */
  close(ended = false): boolean {
    if (this.#closed) return false;
    this.#closed = this.#closedError();
    this.#ended = ended;
    while (this.#resolve !== undefined) {
      const resolve = this.#resolve, reject = this.#reject, step = this.#step;
      this.#next();
      if (step && ended) resolve(ENDED);
      else reject(this.#closed);
    }
    for (const item of this.#queue.splice(0)) this.#discard(item);
    return true;
  }

  #wait(step: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => this.#enlist(resolve, reject, step));
  }

  /** Adds a waiter: in the oldest's fields when none waits, else after the others. */
  #enlist(resolve: Waiter<T>["resolve"], reject: Waiter<T>["reject"], step: boolean): void {
    if (this.#resolve === undefined) {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#step = step;
    } else {
      this.#later.push({ resolve, reject, step });
    }
  }

  /** Hands the oldest waiter's place to the next one, if any. */
  #next(): void {
    // Most often nobody else waits: no shift() of an empty array (a builtin call per item).
    const w = this.#later.length === 0 ? undefined : this.#later.shift()!;
    this.#resolve = w?.resolve;
    if (w) {
      this.#reject = w.reject;
      this.#step = w.step;
    }
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

/** Received datagrams until taken; those still queued at close are dropped. */
export type DatagramQueue = PushQueue<Datagram>;

/** A queue of received datagrams. */
export function datagramQueue(): DatagramQueue {
  return new PushQueue<Datagram>(udpClosedError);
}
