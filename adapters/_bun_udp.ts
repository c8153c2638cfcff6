// UDP sockets through Bun.udpSocket, which moves datagrams faster than Bun's node:dgram but
// cannot share a port: the Bun adapter uses it for every socket bound without reusePort.

import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import type { RawDatagram } from "../src/_adapter.ts";
import { datagramQueue, udpClosedError } from "./_push_queue.ts";

/** The part of a Bun UDP socket used here. */
interface BunUdpSocket {
  readonly hostname: string;
  readonly port: number;
  /** Sends one datagram; false when the kernel's buffer is full (wait for drain). */
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

interface BunUdpApi {
  udpSocket(options: Record<string, unknown>): Promise<BunUdpSocket>;
}

/** Binds a UDP socket with Bun.udpSocket. */
export async function listenBunUdp(opts: { hostname: string; port: number }): Promise<RawDatagram> {
  const queue = datagramQueue();
  const drained: (() => void)[] = [];
  const bun = (globalThis as unknown as { Bun: BunUdpApi }).Bun;
  const socket = await bun.udpSocket({
    hostname: opts.hostname,
    port: opts.port,
    binaryType: "uint8array",
    socket: {
      data(_socket: unknown, data: Uint8Array, port: number, hostname: string) {
        queue.push([data, { transport: "udp", hostname, port }]);
      },
      drain() {
        for (const resume of drained.splice(0)) resume();
      },
      error() {},
    },
  });
  const family = socket.hostname.includes(":") ? 6 : 4;
  return {
    addr: { transport: "udp", hostname: socket.hostname, port: socket.port },
    native: socket,
    receive: () => queue.take(),
    async send(data, to) {
      // Bun's send takes only IP addresses; names resolve the way node:dgram resolves them.
      const ip = isIP(to.hostname) ? to.hostname : (await lookup(to.hostname, { family })).address;
      while (!socket.send(data, to.port, ip)) {
        if (queue.closed) throw udpClosedError();
        await new Promise<void>((resolve) => drained.push(resolve));
      }
      return data.length;
    },
    close() {
      if (queue.close()) {
        for (const resume of drained.splice(0)) resume();
        socket.close();
      }
      return Promise.resolve();
    },
  };
}
