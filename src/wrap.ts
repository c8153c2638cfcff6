// Turns views of raw runtime sockets into the public Listener and DatagramListener objects.

import type { Addr, Conn, DatagramListener, Listener, NetAddr, UdpAddr } from "./types.ts";
import type { View } from "./shared.ts";

async function* iterate<T>(view: View<T>): AsyncGenerator<T, void, undefined> {
  while (true) {
    let item: T;
    try {
      item = await view.next();
    } catch (err) {
      if (view.closed) return;
      throw err;
    }
    yield item;
  }
}

/** A Listener over one view of accepted connections. */
export function wrapListener(view: View<Conn>, addrs: readonly Addr[], native: unknown): Listener {
  return {
    addr: addrs[0]!,
    addrs,
    native,
    accept: () => view.next(),
    close: () => view.close(),
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
