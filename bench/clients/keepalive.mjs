// Kept-alive HTTP load for the PROXY measure (bench/lib/proxy.mjs), where wrk cannot help: it
// cannot send bytes once per connection. Opens `connections` connections to 127.0.0.1:port,
// sends a PROXY v2 header first on each when `header` is "v2", then one request at a time per
// connection (the next once the fixed 38-byte response is in), and prints the responses per
// second over `durationMs`, after `warmupMs`. Stops by itself.
// Argument: JSON { port, connections, durationMs, warmupMs, header }.

import { connect } from "node:net";
import process from "node:process";

const { port, connections = 32, durationMs, warmupMs = 300, header } = JSON.parse(process.argv[2]);
const REQUEST = Buffer.from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
const RESPONSE_LENGTH = Buffer.byteLength("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
const HEADER = Buffer.from([
  ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
  ...[0x21, 0x11, 0x00, 0x0c, 203, 0, 113, 7, 192, 0, 2, 1, 0xc7, 0x38, 0x01, 0xbb],
]);

let counting = false;
let responses = 0;
let errors = 0;
const sockets = [];

for (let i = 0; i < connections; i++) {
  const socket = connect({ port, host: "127.0.0.1" });
  socket.setNoDelay(true);
  let pending = 0;
  socket.on("connect", () => {
    if (header === "v2") socket.write(HEADER);
    socket.write(REQUEST);
  });
  socket.on("data", (chunk) => {
    pending += chunk.length;
    while (pending >= RESPONSE_LENGTH) {
      pending -= RESPONSE_LENGTH;
      if (counting) responses++;
      socket.write(REQUEST);
    }
  });
  socket.on("error", () => errors++);
  sockets.push(socket);
}

setTimeout(() => {
  counting = true;
  const start = performance.now();
  setTimeout(() => {
    counting = false;
    const seconds = (performance.now() - start) / 1000;
    process.stdout.write(`${JSON.stringify({ rate: responses / seconds, responses, errors })}\n`);
    for (const s of sockets) s.destroy();
    process.exit(0);
  }, durationMs);
}, warmupMs);
