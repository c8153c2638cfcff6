// Connection load for measure 5: opens `count` fresh connections to 127.0.0.1:port,
// `concurrency` at a time, sends one "Connection: close" request on each and tallies the
// one-byte bodies (the index of the listener that accepted). Stops by itself after `maxMs`.
// Argument: JSON { port, count, concurrency, maxMs }.

import { connect } from "node:net";
import process from "node:process";

const { port, count, concurrency = 32, maxMs = 120_000 } = JSON.parse(process.argv[2]);
const request = Buffer.from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
const bodies = {};
let started = 0;
let finished = 0;
let errors = 0;
const start = performance.now();

function report(complete) {
  const elapsedMs = performance.now() - start;
  const result = { complete, bodies, errors, finished, elapsedMs, rate: finished / (elapsedMs / 1000) };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function openOne() {
  if (started >= count) return;
  started++;
  const socket = connect({ host: "127.0.0.1", port });
  let last;
  socket.on("connect", () => socket.write(request));
  socket.on("data", (chunk) => (last = chunk));
  socket.on("error", () => errors++);
  socket.on("close", () => {
    finished++;
    if (last !== undefined && last.length > 0) {
      const body = String.fromCharCode(last[last.length - 1]);
      bodies[body] = (bodies[body] ?? 0) + 1;
    }
    if (finished === count) report(true);
    else openOne();
  });
}

for (let i = 0; i < concurrency; i++) openOne();
setTimeout(() => report(false), maxMs);
