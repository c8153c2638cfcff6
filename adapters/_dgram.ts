// UDP sockets through node:dgram, used by the Node adapter and by Bun's (whose own
// Bun.udpSocket cannot share a port, while its node:dgram can).

import { createSocket, type Socket } from "node:dgram";
import type { RawDatagram } from "../src/adapter.ts";
import type { NetAddr } from "../src/types.ts";

type Datagram = [Uint8Array, NetAddr];

/** Binds a UDP socket with node:dgram. */
export function listenDgram(opts: { hostname: string; port: number; reusePort: boolean }): Promise<RawDatagram> {
  const type = opts.hostname.includes(":") ? "udp6" : "udp4";
  const socket: Socket = createSocket({ type, reusePort: opts.reusePort } as Parameters<typeof createSocket>[0]);
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once("error", fail);
    socket.bind({ address: opts.hostname, port: opts.port, exclusive: true }, () => {
      socket.off("error", fail);
      resolve(wrapDgram(socket));
    });
  });
}

function wrapDgram(socket: Socket): RawDatagram {
  const queue: Datagram[] = [];
  let waiter: { resolve(d: Datagram): void; reject(e: unknown): void } | undefined;
  let closed: Error | undefined;
  const { address, port } = socket.address();
  socket.on("message", (msg, rinfo) => {
    const d: Datagram = [new Uint8Array(msg.buffer, msg.byteOffset, msg.length), {
      transport: "udp",
      hostname: rinfo.address,
      port: rinfo.port,
    }];
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w.resolve(d);
    } else queue.push(d);
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    closed = new Error("UDP socket closed");
    waiter?.reject(closed);
    waiter = undefined;
  });
  return {
    addr: { transport: "udp", hostname: address, port },
    native: socket,
    receive() {
      const d = queue.shift();
      if (d) return Promise.resolve(d);
      if (closed) return Promise.reject(closed);
      return new Promise((resolve, reject) => (waiter = { resolve, reject }));
    },
    send(data, to) {
      return new Promise((resolve, reject) =>
        socket.send(data, to.port, to.hostname, (err, bytes) => (err ? reject(err) : resolve(bytes)))
      );
    },
    close() {
      if (closed) return Promise.resolve();
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}
