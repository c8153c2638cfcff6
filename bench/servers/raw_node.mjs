// The raw node:net and node:dgram side: the same work as bench/servers/poly.mjs written by hand
// on a net.Server's 'data' events and a dgram socket's 'message' events.

import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { CLOSE_RESPONSE, createScanner, HOST, indexResponse, RESPONSE } from "./_common.mjs";

function listen(server, port, reusePort) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: HOST, port, ...(reusePort ? { reusePort } : {}) }, () => {
      server.off("error", reject);
      resolve(server.address().port);
    });
  });
}

function keepAlive(socket) {
  const scan = createScanner();
  socket.on("data", (chunk) => {
    for (let k = scan(chunk, chunk.length); k > 0; k--) socket.write(RESPONSE);
  });
  socket.on("error", () => {});
}

// Write, then close at once: what polybind's `await conn.write(r); conn.close()` does on node:net
// (socket.end() would also wait for the client's FIN, which is more work, not the same work).
const once = (response) => (socket) => {
  const scan = createScanner();
  socket.on("data", (chunk) => {
    if (scan(chunk, chunk.length) > 0) {
      socket.write(response);
      socket.destroy();
    }
  });
  socket.on("error", () => {});
};

/** Keep-alive HTTP through 'data' events and socket.write. */
export function rw() {
  return listen(createServer(keepAlive), 0, false);
}

/** One request per connection. */
export function close() {
  return listen(createServer(once(CLOSE_RESPONSE)), 0, false);
}

/** UDP echo. */
export function udp() {
  const socket = createSocket("udp4");
  socket.on("message", (msg, from) => socket.send(msg, from.port, from.address));
  socket.on("error", () => {});
  return new Promise((resolve) => socket.bind(0, HOST, () => resolve(socket.address().port)));
}

/** Four SO_REUSEPORT listeners on one port. */
export async function balance() {
  const port = await listen(createServer(once(indexResponse(0))), 0, true);
  for (let i = 1; i < 4; i++) await listen(createServer(once(indexResponse(i))), port, true);
  return port;
}

const closeServer = (server) => new Promise((resolve) => server.close(() => resolve()));

/** Binds `count` sockets as polybind would (reusePort: one each; else one), resolving with a closer. */
export async function bindMany(count, reusePort) {
  const first = createServer();
  const port = await listen(first, 0, reusePort);
  const all = [first];
  for (let i = 1; reusePort && i < count; i++) {
    const server = createServer();
    await listen(server, port, reusePort);
    all.push(server);
  }
  return () => Promise.all(all.map(closeServer));
}

/** One bind and close. */
export async function cycle() {
  const server = createServer();
  await listen(server, 0, false);
  await closeServer(server);
}
