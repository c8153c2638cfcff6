// The last step of the bind pipeline: bound sockets (one per address a host resolved to, merged)
// handed out as `count` public listeners or datagram sockets, views of one source. Accepting
// rides out the errors that pass, so that an accept loop never dies of them.

import type { RawConn, RawDatagram, RawListener } from "./_adapter.ts";
import { describeAddr } from "./_address.ts";
import { toConn } from "./_conn.ts";
import { closedError, errorCode } from "./_errors.ts";
import { mergeSources } from "./_merge.ts";
import { shareSource, type Source } from "./_shared.ts";
import { wrapDatagram, wrapListener, wrapSoleDatagram } from "./_wrap.ts";
import type { PlanAddress } from "./plan.ts";
import type { Addr, Conn, DatagramListener, Listener, NetAddr } from "./types.ts";

/** Accept errors of a peer that left before it was accepted: accept the next one at once. */
const PEER_LEFT = new Set(["ECONNABORTED", "ECONNRESET", "ENOTCONN", "EPROTO"]);
/** Accept errors of exhausted descriptors or memory: wait, then accept again. */
const EXHAUSTED = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

async function retryAccept(raw: RawListener, first: unknown): Promise<RawConn> {
  let err = first;
  for (let delay = 5;;) {
    const code = errorCode(err);
    if (!PEER_LEFT.has(code)) {
      if (!EXHAUSTED.has(code)) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1000);
    }
    try {
      return await raw.accept();
    } catch (next) {
      err = next;
    }
  }
}

/** Makes a public Conn of a connection `raw` accepted (a Unix socket's peer named by its path). */
function connOf(raw: RawListener): (c: RawConn) => Conn {
  const unixPath = raw.addr.transport === "unix" ? raw.addr.path : undefined;
  return (c) => toConn(c, unixPath);
}

/**
 * Accepts from `raw` as public Conns, riding out errors that pass: a peer that left is skipped,
 * exhaustion is waited out with a backoff from 5 ms to 1 s. The usual case costs one then().
 */
function acceptFrom(raw: RawListener): () => Promise<Conn> {
  const conn = connOf(raw);
  return () => raw.accept().then(conn, (err) => retryAccept(raw, err).then(conn));
}

/**
 * acceptFrom with callbacks: where `raw` has acceptWith, no promise a connection (except where
 * an error is ridden out); elsewhere raw.accept()'s alone. The callbacks around the caller's are
 * made once for each caller.
 */
function acceptWithFrom(raw: RawListener): NonNullable<Source<Conn>["takeWith"]> {
  const acceptWith = raw.acceptWith ?? function (this: RawListener, ok, fail) {
    this.accept().then(ok, fail);
  };
  const conn = connOf(raw);
  let last:
    | { ok(conn: Conn): void; fail(err: unknown): void; onConn(c: RawConn): void; onError(err: unknown): void }
    | undefined;
  return (ok, fail) => {
    if (last?.ok !== ok || last.fail !== fail) {
      const onConn = (c: RawConn) => ok(conn(c));
      last = { ok, fail, onConn, onError: (err) => void retryAccept(raw, err).then(onConn, fail) };
    }
    acceptWith.call(raw, last.onConn, last.onError);
  };
}

const closeConn = (conn: Conn) => conn.close();

/** Stream sockets (one per address, merged) as `count` Listener views. */
export function listenerViews(raws: RawListener[], count: number): Listener[] {
  const addrs = raws.map((r) => r.addr);
  const sources = raws.map((r) => ({ take: acceptFrom(r), takeWith: acceptWithFrom(r), close: () => r.close() }));
  const source = mergeSources(sources, closeConn);
  const views = shareSource<Conn>(source, count, () => closedError(describeAddr(addrs[0]!)), closeConn);
  return views.map((view) => wrapListener(view, addrs, raws[0]!.native, count > 1));
}

type Datagram = [Uint8Array, NetAddr];

/** Sends through the socket of the destination's address family (the first one otherwise). */
function sender(raws: RawDatagram[]): (data: Uint8Array, to: NetAddr) => Promise<number> {
  if (raws.length === 1) return (data, to) => raws[0]!.send(data, to);
  return (data, to) => {
    const v6 = to.hostname.includes(":");
    const raw = raws.find((r) => r.addr.hostname.includes(":") === v6) ?? raws[0]!;
    return raw.send(data, to);
  };
}

/** UDP sockets (one per address, merged) as `count` DatagramListener views. */
export function datagramViews(raws: RawDatagram[], count: number): DatagramListener[] {
  const first = raws[0]!;
  const closed = () => closedError(describeAddr(first.addr));
  if (raws.length === 1 && count === 1 && first.step) return [wrapSoleDatagram(first, first.step, closed)];
  const source = mergeSources<Datagram>(
    raws.map((r) => ({ take: () => r.receive(), close: () => r.close() })),
    () => {},
  );
  const send = sender(raws);
  return shareSource<Datagram>(source, count, closed, () => {})
    .map((view) => wrapDatagram(view, first.addr, first.native, send, closed));
}

/**
 * A raw listener on an inherited Unix socket, named by its plan's path where the runtime cannot tell it.
 *
 * @param raw The raw listener.
 * @param address The plan's address.
 * @returns The listener, named.
 * @example
 * ```ts ignore
 * const listener = listenerViews([named(await a.listenFd({ fd, backlog: 511 }), plan.address)], 1)[0];
 * ```
 */
export function named(raw: RawListener, address: PlanAddress): RawListener {
  if (raw.addr.transport !== "unix" || address.transport !== "unix" || raw.addr.path === address.path) return raw;
  const addr: Addr = { transport: "unix", path: address.path };
  return { addr, accept: () => raw.accept(), close: () => raw.close(), native: raw.native };
}
