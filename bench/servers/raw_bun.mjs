// The raw Bun side: the same work as bench/servers/poly.mjs written by hand on Bun.listen's
// handlers and Bun.udpSocket. Each function binds, starts serving and returns its port.

import { CLOSE_RESPONSE, createScanner, HOST, indexResponse, RESPONSE } from "./_common.mjs";

/** Handlers that answer every request of a keep-alive connection. */
const keepAlive = {
  binaryType: "uint8array",
  open(socket) {
    socket.data = createScanner();
  },
  data(socket, chunk) {
    for (let k = socket.data(chunk, chunk.length); k > 0; k--) socket.write(RESPONSE);
  },
  error() {},
};

/** Handlers that answer one request, then close (Bun's end(data) writes, then closes at once). */
const once = (response) => ({
  binaryType: "uint8array",
  open(socket) {
    socket.data = createScanner();
  },
  data(socket, chunk) {
    if (socket.data(chunk, chunk.length) > 0) socket.end(response);
  },
  error() {},
});

/** Keep-alive HTTP through Bun.listen's data handler and socket.write. */
export function rw() {
  return Bun.listen({ hostname: HOST, port: 0, socket: keepAlive }).port;
}

/** One request per connection. */
export function close() {
  return Bun.listen({ hostname: HOST, port: 0, socket: once(CLOSE_RESPONSE) }).port;
}

/** UDP echo through Bun's own UDP socket. */
export async function udp() {
  const socket = await Bun.udpSocket({
    hostname: HOST,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(s, data, port, address) {
        s.send(data, port, address);
      },
    },
  });
  return socket.port;
}

/** UDP echo through Bun's node:dgram (what polybind uses on Bun), for comparison. */
export { udp as udpDgram } from "./raw_node.mjs";

/** Four SO_REUSEPORT listeners on one port. */
export function balance() {
  const first = Bun.listen({ hostname: HOST, port: 0, reusePort: true, socket: once(indexResponse(0)) });
  for (let i = 1; i < 4; i++) {
    Bun.listen({ hostname: HOST, port: first.port, reusePort: true, socket: once(indexResponse(i)) });
  }
  return first.port;
}

const idle = { data() {} };

/** Binds `count` sockets as polybind would (reusePort: one each; else one), resolving with a closer. */
export function bindMany(count, reusePort) {
  const first = Bun.listen({ hostname: HOST, port: 0, reusePort, socket: idle });
  const all = [first];
  for (let i = 1; reusePort && i < count; i++) {
    all.push(Bun.listen({ hostname: HOST, port: first.port, reusePort, socket: idle }));
  }
  return Promise.resolve(() => {
    for (const l of all) l.stop(false);
    return Promise.resolve();
  });
}

/** One bind and close. */
export function cycle() {
  Bun.listen({ hostname: HOST, port: 0, socket: idle }).stop(false);
  return Promise.resolve();
}
