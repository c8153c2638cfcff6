// UDP load for measure 4: keeps `window` datagrams in flight to the echo server at
// 127.0.0.1:port (a new one leaves as each echo comes back) and prints how many echoes came
// back per second over `durationMs`, after `warmupMs`. Stops by itself.
// Argument: JSON { port, durationMs, warmupMs, window, size }.

import { createSocket } from "node:dgram";
import process from "node:process";

const { port, durationMs, warmupMs = 500, window = 32, size = 64 } = JSON.parse(process.argv[2]);
const payload = Buffer.alloc(size, 120);
const socket = createSocket("udp4");
let received = 0;
let refills = 0;

socket.on("message", () => {
  received++;
  socket.send(payload);
});
socket.on("error", () => {});

const fill = () => {
  for (let i = 0; i < window; i++) socket.send(payload);
};

socket.connect(port, "127.0.0.1", () => {
  fill();
  // Loopback seldom drops a datagram, but if the window ever empties, refill it.
  let last = -1;
  const watchdog = setInterval(() => {
    if (received === last) {
      refills++;
      fill();
    }
    last = received;
  }, 50);
  setTimeout(() => {
    const from = received;
    const start = performance.now();
    setTimeout(() => {
      const seconds = (performance.now() - start) / 1000;
      clearInterval(watchdog);
      process.stdout.write(`${JSON.stringify({ rate: (received - from) / seconds, received, refills })}\n`);
      process.exit(0);
    }, durationMs);
  }, warmupMs);
});
setTimeout(() => process.exit(2), warmupMs + durationMs + 10_000);
