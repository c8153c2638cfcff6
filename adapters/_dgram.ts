// UDP sockets through node:dgram, used by the Node adapter and by Bun's (whose own
// Bun.udpSocket cannot share a port, while its node:dgram can).

import { createSocket, type Socket } from "node:dgram";
import type { RawDatagram } from "../src/_adapter.ts";
import type { NetAddr } from "../src/types.ts";
import { datagramQueue } from "./_push_queue.ts";

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
  const queue = datagramQueue();
  const { address, port } = socket.address();
  socket.on("message", (msg, rinfo) => {
    const from: NetAddr = { transport: "udp", hostname: rinfo.address, port: rinfo.port };
    queue.push([new Uint8Array(msg.buffer, msg.byteOffset, msg.length), from]);
  });
  socket.on("error", () => {});
  socket.on("close", () => queue.close());
  return {
    addr: { transport: "udp", hostname: address, port },
    native: socket,
    receive: () => queue.take(),
    send(data, to) {
      return new Promise((resolve, reject) =>
        socket.send(data, to.port, to.hostname, (err, bytes) => (err ? reject(err) : resolve(bytes)))
      );
    },
    close() {
      if (queue.closed) return Promise.resolve();
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}
