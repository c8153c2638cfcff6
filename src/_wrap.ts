// Turns views of raw runtime sockets into the public Listener and DatagramListener objects.

import type { RawDatagram } from "./_adapter.ts";
import type { Addr, Conn, DatagramListener, DrainOptions, Listener, NetAddr, UdpAddr } from "./types.ts";
import { DONE, type View } from "./_shared.ts";

/**
 * An iterator over a view: one then() an item (the view's own), where an async generator costs
 * three microtasks. It ends when the view is closed; leaving a for-await loop closes nothing.
 */
function iterate<T>(view: View<T>): AsyncIterableIterator<T, undefined> {
  const it: AsyncIterableIterator<T, undefined> = {
    next: () => view.step(),
    return: () => Promise.resolve(DONE),
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}

/** The key of a Listener's accept() with callbacks (see {@linkcode acceptWith}). */
const ACCEPT_WITH: unique symbol = Symbol("polybind.acceptWith");

interface AcceptingWith {
  [ACCEPT_WITH]?(ok: (conn: Conn) => void, fail: (err: unknown) => void): void;
}

/**
 * `listener.accept()` with callbacks instead of a promise, where the listener can (a sole
 * listener on one node:net or Bun socket: no promise a connection; elsewhere accept()'s own):
 * `ok` with the connection, at once where one is queued, or `fail` with what accept() would
 * reject with. One call at a time, for the listener's one consumer (the PROXY protocol's).
 *
 * @param listener A Listener (any other than polybind's is asked with accept()).
 * @param ok Gets the connection.
 * @param fail Gets the error.
 * @example
 * ```ts ignore
 * acceptWith(listener, (conn) => conn.close(), (err) => console.error(err));
 * ```
 */
export function acceptWith(listener: Listener, ok: (conn: Conn) => void, fail: (err: unknown) => void): void {
  const own = (listener as AcceptingWith)[ACCEPT_WITH];
  if (own !== undefined) own.call(listener, ok, fail);
  else listener.accept().then(ok, fail);
}

/**
 * A Listener over one view of accepted connections. `shared` says other views share its socket,
 * in which case draining it is closing it (the others go on accepting what is queued).
 */
export function wrapListener(view: View<Conn>, addrs: readonly Addr[], native: unknown, shared: boolean): Listener {
  let draining: Promise<void> | undefined;
  const drain = (options: DrainOptions = {}) =>
    draining ??= (async () => {
      const idleMs = options.idleMs ?? 50;
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      while (!shared && !view.closed && Date.now() < deadline) {
        const idleSince = view.idleSince;
        if (idleSince !== undefined && Date.now() - idleSince >= idleMs) break;
        await new Promise((resolve) => setTimeout(resolve, Math.max(5, idleMs / 5)));
      }
      await view.close();
    })();
  const takeWith = view.takeWith;
  return {
    addr: addrs[0]!,
    addrs,
    native,
    accept: () => view.next(),
    ...(takeWith ? { [ACCEPT_WITH]: takeWith } : {}),
    close: () => view.close(),
    drain,
    [Symbol.asyncIterator]: () => iterate(view),
    [Symbol.asyncDispose]: () => view.close(),
  };
}

/** A DatagramListener over one view of received datagrams. */
export function wrapDatagram(
  view: View<[Uint8Array, NetAddr]>,
  addr: UdpAddr,
  native: unknown,
  send: (data: Uint8Array, to: NetAddr) => Promise<number>,
  closedError: () => Error,
): DatagramListener {
  return {
    addr,
    native,
    receive: () => view.next(),
    send: (data, to) => view.closed ? Promise.reject(closedError()) : send(data, to),
    close: () => view.close(),
    [Symbol.asyncIterator]: () => iterate(view),
    [Symbol.asyncDispose]: () => view.close(),
  };
}

/**
 * The DatagramListener of a socket nobody shares, on an adapter's `step`: iterating it takes
 * each datagram's iterator result straight from the adapter, one promise a datagram.
 */
export function wrapSoleDatagram(
  raw: RawDatagram,
  step: NonNullable<RawDatagram["step"]>,
  closedError: () => Error,
): DatagramListener {
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= raw.close());
  const next = () => closing === undefined ? step.call(raw) : Promise.resolve(DONE);
  const rejectClosed = () => Promise.reject(closedError());
  return {
    addr: raw.addr,
    native: raw.native,
    receive: () =>
      closing === undefined
        ? raw.receive().catch((err) => {
          throw closing === undefined ? err : closedError();
        })
        : rejectClosed(),
    send: (data, to) => closing === undefined ? raw.send(data, to) : rejectClosed(),
    close,
    [Symbol.asyncIterator]() {
      const it: AsyncIterableIterator<[Uint8Array, NetAddr], undefined> = {
        next,
        return: () => Promise.resolve(DONE),
        [Symbol.asyncIterator]: () => it,
      };
      return it;
    },
    [Symbol.asyncDispose]: close,
  };
}
