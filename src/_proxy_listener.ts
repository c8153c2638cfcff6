// A Listener that hands out only connections that passed the PROXY protocol policy. It accepts
// from the inner listener while someone waits in accept(), reads each connection's header
// concurrently (a slow one never holds up the others), and closes, on its own, every
// connection refused or too slow: nothing of that reaches accept(), which never throws for it.
// One timer serves every header's deadline (deadlines come in accept order, so the reads in
// progress are a queue, oldest first). Per connection: one inner accept(), one HeaderRead, and
// the promise of the accept() or iterator step that gets it.

import { describeAddr } from "./_address.ts";
import { peerHost } from "./_conn.ts";
import { closedError } from "./_errors.ts";
import { inBlocks, type NormalizedProxyProtocol, trustsEveryPeer } from "./_proxy_options.ts";
import { HeaderRead } from "./_proxy_read.ts";
import { DONE } from "./_shared.ts";
import type { Addr, Conn, DrainOptions, Listener } from "./types.ts";
import { acceptWith } from "./_wrap.ts";

/** A waiting accept() (`step` false: settles with the Conn) or iterator step (an iterator result). */
interface Waiter {
  resolve(value: Conn | IteratorResult<Conn, undefined>): void;
  reject(err: unknown): void;
  step: boolean;
}

const ignore = (): void => {};

class ProxyListener implements Listener {
  readonly #inner: Listener;
  readonly #options: NormalizedProxyProtocol;
  /** The oldest waiter, in fields of its own: a loop's one waiting step costs no object. */
  #resolve: Waiter["resolve"] | undefined;
  #reject: Waiter["reject"] = ignore;
  #step = false;
  /** Waiters after the oldest, in order. */
  readonly #later: Waiter[] = [];
  readonly #ready: Conn[] = [];
  /** Connections reading their header, oldest (first deadline) first. */
  #first: HeaderRead | undefined;
  #last: HeaderRead | undefined;
  #accepting = false;
  #pumping = false;
  #innerDone = false;
  #closed: Promise<void> | undefined;
  #draining: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #whenSettled: (() => void) | undefined;
  #lastHost = "";
  #lastTrusted = false;
  /** No peer of this listener can be untrusted: none is asked its address. */
  readonly #everyone: boolean;

  constructor(inner: Listener, options: NormalizedProxyProtocol) {
    this.#inner = inner;
    this.#options = options;
    this.#everyone = trustsEveryPeer(options.trusted, inner.addrs);
  }

  get addr(): Addr {
    return this.#inner.addr;
  }

  get addrs(): readonly Addr[] {
    return this.#inner.addrs;
  }

  get native(): unknown {
    return this.#inner.native;
  }

  accept(): Promise<Conn> {
    if (this.#closed !== undefined) return Promise.reject(this.#closedError());
    const conn = this.#ready.shift();
    if (conn !== undefined) return Promise.resolve(conn);
    return this.#wait(false) as Promise<Conn>;
  }

  /** accept() as an iterator's step, with one promise a connection: done once closed. */
  #nextStep(): Promise<IteratorResult<Conn, undefined>> {
    if (this.#closed !== undefined) return Promise.resolve(DONE);
    const conn = this.#ready.shift();
    if (conn !== undefined) return Promise.resolve({ value: conn, done: false });
    return this.#wait(true) as Promise<IteratorResult<Conn, undefined>>;
  }

  /** Waits for the next admitted connection: settled by #deliver, #fail or close(). */
  #wait(step: boolean): Promise<unknown> {
    const promise = new Promise<Conn | IteratorResult<Conn, undefined>>((resolve, reject) => {
      if (this.#resolve === undefined) {
        this.#resolve = resolve;
        this.#reject = reject;
        this.#step = step;
      } else this.#later.push({ resolve, reject, step });
    });
    this.#pump();
    return promise;
  }

  /** Hands the oldest waiter's place to the next one, if any. */
  #nextWaiter(): void {
    const w = this.#later.shift();
    this.#resolve = w?.resolve;
    if (w !== undefined) {
      this.#reject = w.reject;
      this.#step = w.step;
    }
  }

  /**
   * One inner accept at a time, while someone waits: the inner queue is the backlog. With
   * callbacks where the inner listener has them, which may come before acceptWith returns: they
   * call #pump again, which then returns, and this loop takes the next.
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    while (!this.#accepting && !this.#innerDone && this.#closed === undefined && this.#resolve !== undefined) {
      this.#accepting = true;
      acceptWith(this.#inner, this.#onAccept, this.#onAcceptError);
    }
    this.#pumping = false;
  }

  readonly #onAccept = (conn: Conn): void => {
    this.#accepting = false;
    this.#admit(conn);
    this.#pump();
  };

  readonly #onAcceptError = (err: unknown): void => {
    this.#accepting = false;
    if (this.#closed !== undefined) return;
    if (this.#draining !== undefined) {
      // The inner listener has drained and closed: what is left are the headers being read.
      this.#innerDone = true;
      this.#settled();
      return;
    }
    const reject = this.#reject;
    if (this.#resolve !== undefined) {
      this.#nextWaiter();
      reject(err);
    }
    this.#pump();
  };

  #trusted(conn: Conn): boolean {
    if (this.#everyone) return true;
    const host = peerHost(conn);
    // A Unix socket's peers are whoever its file's permissions let in.
    if (host === undefined) return true;
    if (host !== this.#lastHost) {
      this.#lastHost = host;
      this.#lastTrusted = inBlocks(host, this.#options.trusted);
    }
    return this.#lastTrusted;
  }

  #admit(conn: Conn): void {
    const trusted = this.#trusted(conn);
    const { required, timeoutMs } = this.#options;
    // An untrusted peer when a header is required: closed without reading.
    if (!trusted && required) return conn.close();
    const read = new HeaderRead(this.#settle, conn, trusted, required, Date.now() + timeoutMs);
    read.queued = true;
    read.prev = this.#last;
    if (this.#last !== undefined) this.#last.next = read;
    else this.#first = read;
    this.#last = read;
    this.#timer ??= setTimeout(this.#sweep, timeoutMs);
    read.start();
  }

  #unlink(read: HeaderRead): void {
    read.queued = false;
    const { prev, next } = read;
    if (prev !== undefined) prev.next = next;
    else this.#first = next;
    if (next !== undefined) next.prev = prev;
    else this.#last = prev;
    read.prev = read.next = undefined;
  }

  /** A header read's verdict: admitted (the read is the Conn to hand out), or closed. */
  readonly #settle = (read: HeaderRead, admitted: boolean): void => {
    // Not queued any more: timed out, or the listener closed; either closed its connection.
    if (!read.queued) {
      if (admitted) read.close();
    } else {
      this.#unlink(read);
      if (admitted) this.#deliver(read);
    }
    this.#settled();
  };

  #deliver(conn: Conn): void {
    if (this.#closed !== undefined) return conn.close();
    const resolve = this.#resolve;
    if (resolve === undefined) return void this.#ready.push(conn);
    const step = this.#step;
    this.#nextWaiter();
    resolve(step ? { value: conn, done: false } : conn);
  }

  /** Closes the connections whose header is late, then waits for the next deadline. */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    for (let read = this.#first; read !== undefined; read = this.#first) {
      if (read.deadline > now) {
        this.#timer = setTimeout(this.#sweep, read.deadline - now);
        break;
      }
      this.#unlink(read);
      read.conn.close();
    }
    this.#settled();
  };

  /** Tells a drain waiting for the headers being read that none is left. */
  #settled(): void {
    if (this.#first === undefined && this.#innerDone) this.#whenSettled?.();
  }

  #closedError(): Error {
    return closedError(describeAddr(this.#inner.addr));
  }

  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closed = this.#inner.close();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const err = this.#closedError();
    // Waiting steps end the iteration; waiting accept() calls reject.
    while (this.#resolve !== undefined) {
      const resolve = this.#resolve, reject = this.#reject, step = this.#step;
      this.#nextWaiter();
      if (step) resolve(DONE);
      else reject(err);
    }
    for (const conn of this.#ready.splice(0)) conn.close();
    for (let read = this.#first; read !== undefined; read = this.#first) {
      this.#unlink(read);
      read.conn.close();
    }
    this.#whenSettled?.();
    return this.#closed;
  }

  /**
   * Drains the inner listener (its queue goes on reaching accept() through the headers), then
   * gives the headers still being read the rest of `timeoutMs`, then closes what is left.
   */
  drain(options: DrainOptions = {}): Promise<void> {
    return this.#draining ??= (async () => {
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      await this.#inner.drain(options);
      this.#innerDone = true;
      if (this.#first !== undefined && this.#closed === undefined) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          this.#whenSettled = resolve;
          timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        });
        clearTimeout(timer);
      }
      await this.close();
    })();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Conn, undefined> {
    const it: AsyncIterableIterator<Conn, undefined> = {
      next: () => this.#nextStep(),
      // Leaving a for-await loop closes nothing, as with every polybind listener.
      return: () => Promise.resolve(DONE),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A Listener whose connections have passed the PROXY header policy: each has the client's
 * addresses from its header and `conn.proxy`, or (where the policy lets it through without a
 * header) its own. Connections of the inner listener are read concurrently, so a slow header
 * never blocks accept() of others; every refused, malformed or late one is closed here and
 * never reaches accept(). `close()` and `drain()` close the inner listener and the connections
 * still reading a header (`drain()` gives those its `timeoutMs` first).
 *
 * @param listener The listener to read headers on; the wrapper owns it from now on.
 * @param options The checked policy (`checkProxyProtocol`).
 * @returns The wrapping listener.
 * @example
 * ```ts
 * import { createListener } from "../mod.ts";
 * import { checkProxyProtocol } from "./_proxy_options.ts";
 * import { withProxyProtocol } from "./_proxy_listener.ts";
 * await using listener = withProxyProtocol(await createListener({ port: 0 }), checkProxyProtocol(true)!);
 * console.assert(listener.addr.transport === "tcp");
 * ```
 */
export function withProxyProtocol(listener: Listener, options: NormalizedProxyProtocol): Listener {
  return new ProxyListener(listener, options);
}
