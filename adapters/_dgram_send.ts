// Sending on a node:dgram socket without a process.nextTick per datagram. With a callback,
// node:dgram reports every outcome a tick late, even when the datagram left at once (its handle
// tries a synchronous send first); without one it reports nothing, not even a failure. So once
// a send through the public path has shown the socket's internal UDP handle answering as it
// does in Node.js 20 to 24, polybind reads the outcome where node:dgram itself reads it: the
// value the handle's send() returns. Anything else (Bun's node:dgram, a Node.js whose
// internals differ, a host name to look up) keeps the public path. No failure goes unreported.

import type { Socket } from "node:dgram";
import { getSystemErrorName } from "node:util";

/** node:dgram's UDP handle, whose send(req, list, count, port, ip, hasCallback) returns the outcome. */
interface UdpHandle {
  send(this: UdpHandle, ...args: unknown[]): unknown;
}

/** A send request: the handle calls its oncomplete once a queued send is done. */
interface SendReq {
  oncomplete?: (status: number, sent: number) => void;
}

/** The error node:dgram makes of a failed send. */
function sendError(errno: number, address: string, port: number): Error {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`send ${code} ${address}:${port}`), { errno, code, syscall: "send", address, port });
}

/** The UDP handle inside a node:dgram socket, where it is the one Node.js has. */
function udpHandle(socket: Socket): UdpHandle | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === "state symbol");
  const state = key && (socket as unknown as Record<symbol, { handle?: UdpHandle } | undefined>)[key];
  const handle = state?.handle;
  return typeof handle?.send === "function" && handle.constructor?.name === "UDP" ? handle : undefined;
}

/**
 * A send function for a bound `socket`: node:dgram's send() with a callback, until one such
 * send to an IP literal has left at once with the handle returning what Node.js returns; from
 * then on, sends to IP literals go without a callback and settle on the handle's answer.
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
  const handle = udpHandle(socket);
  if (handle === undefined) return viaCallback;

  let direct = false;
  /** Set around a socket.send() that reads its outcome: "watch" observes, "direct" also asks for completion. */
  let reading: "watch" | "direct" | undefined;
  /** What the handle's send() returned in that socket.send(): length + 1, 0 (queued) or -errno. */
  let returned: number | undefined;
  let req: SendReq | undefined;
  const send = handle.send;
  handle.send = function (this: UdpHandle, ...args: unknown[]) {
    if (reading === undefined) return send.apply(this, args);
    if (args.length !== 6 || typeof args[0] !== "object" || typeof args[5] !== "boolean") {
      direct = false;
      // Nothing has been sent yet: socket.send() throws, and the caller sends again with a callback.
      if (reading === "direct") throw UNEXPECTED;
      return send.apply(this, args);
    }
    if (reading === "direct") args[5] = true; // a queued send then reports to oncomplete
    const value = send.apply(this, args);
    if (typeof value !== "number") direct = false;
    else {
      returned = value;
      req = args[0] as SendReq;
    }
    return value;
  };

  /** Sends with a callback, and goes direct if the handle returned length + 1 and the callback said length. */
  const watch = (data: Uint8Array, port: number, hostname: string): Promise<number> => {
    returned = undefined;
    reading = "watch";
    let sent: Promise<number>;
    try {
      sent = viaCallback(data, port, hostname);
    } finally {
      reading = undefined;
    }
    if (returned !== data.byteLength + 1) return sent;
    return sent.then((bytes) => {
      direct = bytes === data.byteLength;
      return bytes;
    });
  };

  const sendDirect = (data: Uint8Array, port: number, hostname: string): Promise<number> => {
    returned = undefined;
    reading = "direct";
    let failure: { err: unknown } | undefined;
    try {
      socket.send(data, port, hostname);
    } catch (err) {
      failure = { err };
    }
    reading = undefined;
    if (failure) return failure.err === UNEXPECTED ? viaCallback(data, port, hostname) : Promise.reject(failure.err);
    const value = returned as number | undefined;
    if (value === undefined) {
      direct = false;
      return Promise.reject(new Error(`Cannot tell whether the datagram to ${hostname}:${port} was sent`));
    }
    if (value > 0) return Promise.resolve(value - 1);
    if (value < 0) return Promise.reject(sendError(value, hostname, port));
    const queued = req!;
    return new Promise((resolve, reject) => {
      queued.oncomplete = (status, sent) => (status < 0 ? reject(sendError(status, hostname, port)) : resolve(sent));
    });
  };

  return (data, port, hostname) => {
    if (!isLiteral(hostname)) return viaCallback(data, port, hostname);
    return direct ? sendDirect(data, port, hostname) : watch(data, port, hostname);
  };
}

/** Thrown through socket.send() when the handle is called in an unexpected way, before it sends. */
const UNEXPECTED = Symbol("unexpected UDP handle call");
