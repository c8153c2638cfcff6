// A load client in its own Node.js process: `total` connections, `concurrency` at a time, each
// sending `ping <i>\n` and expecting `OK ping <i>\n` back. Prints one JSON line of counts.
// Usage: node stress/_client.mjs <port> <total> <concurrency> [host]

import { connect } from "node:net";
import process from "node:process";

const [port, total, concurrency] = process.argv.slice(2, 5).map(Number);
const host = process.argv[5] ?? "127.0.0.1";
const errors = {};
let ok = 0;
let next = 0;
let done = 0;

/** Makes connection `i`; resolves with "ok" or an error name. */
function one(i) {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    let reply = "";
    const timer = setTimeout(() => finish("timeout"), 15_000);
    const finish = (result) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.on("data", (chunk) => (reply += chunk));
    socket.on("error", (err) => finish(err.code ?? "error"));
    socket.on("close", () => finish(reply === `OK ping ${i}\n` ? "ok" : reply === "" ? "closed" : "wrong reply"));
    socket.write(`ping ${i}\n`);
  });
}

async function worker() {
  while (next < total) {
    const result = await one(next++);
    if (result === "ok") ok++;
    else errors[result] = (errors[result] ?? 0) + 1;
    if (++done % 1000 === 0) process.stdout.write(JSON.stringify({ progress: done, ok }) + "\n");
  }
}

const started = Date.now();
await Promise.all(Array.from({ length: concurrency }, worker));
process.stdout.write(JSON.stringify({ total, ok, errors, ms: Date.now() - started }) + "\n");
