// UDP sockets through node:dgram, used by the Node adapter and by Bun's (whose own
// Bun.udpSocket cannot share a port, while its node:dgram can).

import { createSocket, type Socket, type SocketOptions } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";
import process from "node:process";
import type { RawDatagram } from "../src/_adapter.ts";
import { dgramSender } from "./_dgram_send.ts";
import { datagramQueue } from "./_push_queue.ts";

/** isIP, remembering the last literal: an echo answers one peer after another. */
function literalFamily(): (address: string) => number {
  let last = "";
  let lastFamily = 0;
  return (address) => {
    if (address === last) return lastFamily;
    const family = isIP(address);
    if (family !== 0) {
      last = address;
      lastFamily = family;
    }
    return family;
  };
}

/**
 * node:dgram's lookup, answering an IP literal at once once `bound()`: a send to an address
 * (such as a datagram's sender) then reaches the kernel within send(), where dns.lookup defers
 * it by a process.nextTick. Before the bind it defers too, as node:dgram expects of a lookup
 * (bind() emits 'listening' from its callback). Names go to dns.lookup; errors reach send()'s
 * callback either way.
 */
function literalLookup(
  familyOf: (address: string) => number,
  bound: () => boolean,
): NonNullable<SocketOptions["lookup"]> {
  // node:dgram passes the socket's family (4 or 6) where the type says options; dns.lookup takes both.
  return (address, family, callback) => {
    const literal = familyOf(address);
    if (literal === 0) dnsLookup(address, family, callback);
    else if (bound()) callback(null, address, literal);
    else process.nextTick(callback, null, address, literal);
  };
}

/** Binds a UDP socket with node:dgram. */
export function listenDgram(opts: { hostname: string; port: number; reusePort: boolean }): Promise<RawDatagram> {
  let bound = false;
  const familyOf = literalFamily();
  const socket: Socket = createSocket({
    type: opts.hostname.includes(":") ? "udp6" : "udp4",
    reusePort: opts.reusePort,
    lookup: literalLookup(familyOf, () => bound),
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
      resolve(wrapDgram(socket, dgramSender(socket, (host) => familyOf(host) !== 0)));
    });
  });
}

function wrapDgram(socket: Socket, send: ReturnType<typeof dgramSender>): RawDatagram {
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
    send: (data, to) => send(data, to.port, to.hostname),
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
