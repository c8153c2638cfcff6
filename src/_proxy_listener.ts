// A Listener that hands out only connections that passed the PROXY protocol policy. It accepts
// from the inner listener while someone waits in accept(), reads each connection's header
// concurrently (a slow one never holds up the others), and closes, on its own, every
// connection refused or too slow: nothing of that reaches accept(), which never throws for it.
// One timer serves every header's deadline (deadlines come in accept order).

import { describeAddr } from "./_address.ts";
import { closedError } from "./_errors.ts";
import { inBlocks, type NormalizedProxyProtocol } from "./_proxy_options.ts";
import { admitConn } from "./_proxy_read.ts";
import { DONE } from "./_shared.ts";
import type { Addr, Conn, DrainOptions, Listener } from "./types.ts";

class ProxyListener implements Listener {
  readonly #inner: Listener;
  readonly #options: NormalizedProxyProtocol;
  readonly #waiters: { resolve(conn: Conn): void; reject(err: unknown): void }[] = [];
  readonly #ready: Conn[] = [];
  /** Connections reading their header, with their deadlines, oldest first. */
  readonly #pending = new Map<Conn, number>();
  #accepting = false;
  #innerDone = false;
  #closed: Promise<void> | undefined;
  #draining: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #whenSettled: (() => void) | undefined;
  #lastHost = "";
  #lastTrusted = false;

  constructor(inner: Listener, options: NormalizedProxyProtocol) {
    this.#inner = inner;
    this.#options = options;
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
    return this.#take((conn) => conn, () => Promise.reject(this.#closedError()));
  }

  /** accept() as an iterator's step, with one promise a connection: done once closed. */
  #step(): Promise<IteratorResult<Conn, undefined>> {
    return this.#take<IteratorResult<Conn, undefined>>(
      (value) => ({ value, done: false }),
      () => Promise.resolve(DONE),
    );
  }

  /** The next admitted connection as `wrap` gives it; `closed()` once the listener is closed, also while waiting. */
  #take<T>(wrap: (conn: Conn) => T, closed: () => Promise<T>): Promise<T> {
    if (this.#closed !== undefined) return closed();
    const conn = this.#ready.shift();
    if (conn !== undefined) return Promise.resolve(wrap(conn));
    return new Promise((resolve, reject) => {
      this.#waiters.push({
        resolve: (conn) => resolve(wrap(conn)),
        reject: (err) => this.#closed !== undefined ? resolve(closed()) : reject(err),
      });
      this.#pump();
    });
  }

  /** One inner accept() at a time, while someone waits: the inner queue is the backlog. */
  #pump(): void {
    if (this.#accepting || this.#innerDone || this.#closed !== undefined || this.#waiters.length === 0) return;
    this.#accepting = true;
    this.#inner.accept().then((conn) => {
      this.#accepting = false;
      this.#admit(conn);
      this.#pump();
    }, (err) => {
      this.#accepting = false;
      if (this.#closed !== undefined) return;
      if (this.#draining !== undefined) {
        // The inner listener has drained and closed: what is left are the headers being read.
        this.#innerDone = true;
        this.#settled();
        return;
      }
      this.#waiters.shift()?.reject(err);
      this.#pump();
    });
  }

  #trusted(conn: Conn): boolean {
    const peer = conn.remoteAddr;
    // A Unix socket's peers are whoever its file's permissions let in.
    if (peer.transport === "unix") return true;
    if (peer.hostname !== this.#lastHost) {
      this.#lastHost = peer.hostname;
      this.#lastTrusted = inBlocks(peer.hostname, this.#options.trusted);
    }
    return this.#lastTrusted;
  }

  #admit(conn: Conn): void {
    const trusted = this.#trusted(conn);
    const required = this.#options.required;
    this.#pending.set(conn, Date.now() + this.#options.timeoutMs);
    this.#timer ??= setTimeout(() => this.#sweep(), this.#options.timeoutMs);
    admitConn(conn, { trusted, required }, (admitted) => {
      // Not pending any more: timed out, or the listener closed; either closed it.
      if (!this.#pending.delete(conn)) admitted?.close();
      else if (admitted !== undefined) this.#deliver(admitted);
      this.#settled();
    });
  }

  #deliver(conn: Conn): void {
    if (this.#closed !== undefined) return conn.close();
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve(conn);
    else this.#ready.push(conn);
  }

  /** Closes the connections whose header is late, then waits for the next deadline. */
  #sweep(): void {
    this.#timer = undefined;
    const now = Date.now();
    for (const [conn, deadline] of this.#pending) {
      if (deadline > now) {
        this.#timer = setTimeout(() => this.#sweep(), deadline - now);
        break;
      }
      this.#pending.delete(conn);
      conn.close();
    }
    this.#settled();
  }

  /** Tells a drain waiting for the headers being read that none is left. */
  #settled(): void {
    if (this.#pending.size === 0 && this.#innerDone) this.#whenSettled?.();
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
    for (const waiter of this.#waiters.splice(0)) waiter.reject(err);
    for (const conn of this.#ready.splice(0)) conn.close();
    for (const conn of this.#pending.keys()) conn.close();
    this.#pending.clear();
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
      if (this.#pending.size > 0 && this.#closed === undefined) {
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
      next: () => this.#step(),
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
