// Sending on a node:dgram socket without node:dgram's work per datagram. With a callback,
// node:dgram reports every outcome a tick late, even when the datagram left at once (its handle
// tries a synchronous send first); without one it reports nothing, not even a failure. And before
// the handle, each send pays for argument juggling, a lookup, a closure and a new request object.
// So once a send through the public path has shown the socket's internal UDP handle answering as
// it does in Node.js 20 to 24, polybind calls that handle itself, as node:dgram's doSend() does,
// and reads the outcome where node:dgram reads it: the value the handle's send() returns. It does
// so only for what node:dgram would pass straight through (a Uint8Array to an IP literal and a
// valid port, on the socket's own handle, unconnected); anything else (Bun's node:dgram, a
// Node.js whose internals differ, a host name to look up, a closed or connected socket) keeps the
// public path. No failure goes unreported.

import type { Socket } from "node:dgram";
import { getSystemErrorName } from "node:util";

/** node:dgram's UDP handle, whose send(req, list, count, port, ip, hasCallback) returns the outcome. */
interface UdpHandle {
  send(this: UdpHandle, ...args: unknown[]): unknown;
}

/** A send request: the handle calls its oncomplete once a queued send is done. */
interface SendReq {
  oncomplete?: (status: number, sent: number) => void;
  /** The datagram, kept alive until a queued send is done (as node:dgram does). */
  list?: unknown;
}

/** The part of node:dgram's state of a socket that says whether its handle may be called. */
interface DgramState {
  handle?: UdpHandle | null;
  /** 0: not connected, in Node.js 20 to 24. */
  connectState?: unknown;
  /** Node.js 24's sendBlockList, which node:dgram checks before sending. */
  sendBlockList?: unknown;
}

/** The error node:dgram makes of a failed send. */
function sendError(errno: number, address: string, port: number): Error {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`send ${code} ${address}:${port}`), { errno, code, syscall: "send", address, port });
}

/** node:dgram's state of `socket`, where it is an object. */
function dgramState(socket: Socket): DgramState | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === "state symbol");
  const state = key && (socket as unknown as Record<symbol, unknown>)[key];
  return typeof state === "object" && state !== null ? state : undefined;
}

/** The UDP handle in node:dgram's state, where it is the one Node.js has. */
function udpHandle(state: DgramState | undefined): UdpHandle | undefined {
  const handle = state?.handle;
  return typeof handle?.send === "function" && handle.constructor?.name === "UDP" ? handle : undefined;
}

/** Whether node:dgram would hand a send on this socket straight to `handle`. */
function passesThrough(state: DgramState, handle: UdpHandle): boolean {
  return state.handle === handle && state.connectState === 0 && state.sendBlockList === undefined;
}

/** A port node:dgram takes as it is (validatePort). */
const isPort = (port: number) => typeof port === "number" && (port | 0) === port && port > 0 && port < 65536;

/**
 * A send function for a bound `socket`: node:dgram's send() with a callback, until one such
 * send to an IP literal has left at once with the handle returning what Node.js returns; from
 * then on, a Uint8Array to an IP literal goes to the handle directly and settles on its answer.
 *
 * @param socket A bound node:dgram socket whose lookup answers IP literals synchronously (so
 * that its handle's send() runs within socket.send()).
 * @param isLiteral Whether a host is an IP literal.
 * @returns send(data, port, hostname), resolving with the bytes sent.
 */
export function dgramSender(
  socket: Socket,
  isLiteral: (hostname: string) => boolean,
): (data: Uint8Array, port: number, hostname: string) => Promise<number> {
  const viaCallback = (data: Uint8Array, port: number, hostname: string) =>
    new Promise<number>((resolve, reject) =>
      socket.send(data, port, hostname, (err, bytes) => (err ? reject(err) : resolve(bytes)))
    );
  const state = dgramState(socket);
  const handle = udpHandle(state);
  if (state === undefined || handle === undefined) return viaCallback;

  /** The handle's request class, once a send through the public path has shown the handle answering as Node.js's. */
  let SendWrap: (new () => SendReq) | undefined;
  /** Set around a socket.send() whose call of the handle is observed. */
  let watching = false;
  /** What the handle's send() returned in that socket.send() (length + 1, 0 or -errno), and its request. */
  let returned: unknown;
  let seen: SendReq | undefined;
  const send = handle.send;
  handle.send = function (this: UdpHandle, ...args: unknown[]) {
    const value = send.apply(this, args);
    if (watching && args.length === 6 && typeof args[0] === "object" && typeof args[5] === "boolean") {
      returned = value;
      seen = args[0] as SendReq;
    }
    return value;
  };

  /** Sends with a callback, and goes direct if the handle returned length + 1 and the callback said length. */
  const watch = (data: Uint8Array, port: number, hostname: string): Promise<number> => {
    returned = seen = undefined;
    watching = true;
    let sent: Promise<number>;
    try {
      sent = viaCallback(data, port, hostname);
    } finally {
      watching = false;
    }
    const Req = (seen as SendReq | undefined)?.constructor; // set by the handle, within viaCallback()
    if (returned !== data.byteLength + 1 || typeof Req !== "function" || Req.name !== "SendWrap") return sent;
    return sent.then((bytes) => {
      if (bytes === data.byteLength && passesThrough(state, handle)) SendWrap = Req as new () => SendReq;
      return bytes;
    });
  };

  // A request and a list the handle has not kept (it keeps them only for a queued send).
  let req: SendReq | undefined;
  let list: [Uint8Array | undefined] = [undefined];
  const sendDirect = (Req: new () => SendReq, data: Uint8Array, port: number, hostname: string): Promise<number> => {
    const r = req ?? new Req();
    const l = list;
    l[0] = data;
    // hasCallback: a queued send then reports to oncomplete.
    const value = send.call(handle, r, l, 1, port, hostname, true);
    if (typeof value === "number" && value > 0) {
      l[0] = undefined;
      req = r;
      return Promise.resolve(value - 1);
    }
    req = undefined;
    list = [undefined];
    if (typeof value !== "number") {
      SendWrap = undefined;
      return Promise.reject(new Error(`Cannot tell whether the datagram to ${hostname}:${port} was sent`));
    }
    if (value < 0) return Promise.reject(sendError(value, hostname, port));
    r.list = l;
    return new Promise((resolve, reject) => {
      r.oncomplete = (status, sent) => (status < 0 ? reject(sendError(status, hostname, port)) : resolve(sent));
    });
  };

  return (data, port, hostname) => {
    if (!isLiteral(hostname)) return viaCallback(data, port, hostname);
    if (SendWrap === undefined) return watch(data, port, hostname);
    if (data instanceof Uint8Array && isPort(port) && passesThrough(state, handle)) {
      return sendDirect(SendWrap, data, port, hostname);
    }
    return viaCallback(data, port, hostname);
  };
}
