// UDP sockets through node:dgram, used by the Node adapter and by Bun's (whose own
// Bun.udpSocket cannot share a port, while its node:dgram can).

import { createSocket, type Socket, type SocketOptions } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";
import process from "node:process";
import type { RawDatagram } from "../src/_adapter.ts";
import { datagramQueue } from "./_push_queue.ts";

/**
 * node:dgram's lookup, answering an IP literal at once once `bound()`: a send to an address
 * (such as a datagram's sender) then reaches the kernel within send(), where dns.lookup defers
 * it by a process.nextTick. Before the bind it defers too, as node:dgram expects of a lookup
 * (bind() emits 'listening' from its callback). Names go to dns.lookup; errors reach send()'s
 * callback either way.
 */
function literalLookup(bound: () => boolean): NonNullable<SocketOptions["lookup"]> {
  // The last literal seen, as an echo sends to one peer after another: a compare, not a parse.
  let last = "";
  let lastFamily = 0;
  // node:dgram passes the socket's family (4 or 6) where the type says options; dns.lookup takes both.
  return (address, family, callback) => {
    const literal = address === last ? lastFamily : isIP(address);
    if (literal === 0) return dnsLookup(address, family, callback);
    last = address;
    lastFamily = literal;
    if (bound()) callback(null, address, literal);
    else process.nextTick(callback, null, address, literal);
  };
}

/** Binds a UDP socket with node:dgram. */
export function listenDgram(opts: { hostname: string; port: number; reusePort: boolean }): Promise<RawDatagram> {
  let bound = false;
  const socket: Socket = createSocket({
    type: opts.hostname.includes(":") ? "udp6" : "udp4",
    reusePort: opts.reusePort,
    lookup: literalLookup(() => bound),
  } as SocketOptions); // reusePort: not in @types/node 20
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once("error", fail);
    socket.bind({ address: opts.hostname, port: opts.port, exclusive: true }, () => {
      socket.off("error", fail);
      bound = true;
      resolve(wrapDgram(socket));
    });
  });
}

function wrapDgram(socket: Socket): RawDatagram {
  const queue = datagramQueue();
  const { address, port } = socket.address();
  let closing: Promise<void> | undefined;
  socket.on("message", (msg, rinfo) => {
    queue.push([new Uint8Array(msg.buffer, msg.byteOffset, msg.length), {
      transport: "udp",
      hostname: rinfo.address,
      port: rinfo.port,
    }]);
  });
  socket.on("error", () => {});
  // Closed by someone else (through `native`): receiving fails rather than ends.
  socket.on("close", () => queue.close());
  return {
    addr: { transport: "udp", hostname: address, port },
    native: socket,
    receive: () => queue.take(),
    step: () => queue.step(),
    send(data, to) {
      return new Promise((resolve, reject) =>
        socket.send(data, to.port, to.hostname, (err, bytes) => (err ? reject(err) : resolve(bytes)))
      );
    },
    close() {
      if (closing === undefined) {
        const foreign = queue.closed;
        queue.close(true);
        closing = foreign ? Promise.resolve() : new Promise((resolve) => socket.close(() => resolve()));
      }
      return closing;
    },
  };
}
