// Node.js's own multi-worker option: node:cluster with round-robin scheduling, 2 workers, the
// same response as `polybind serve`. Prints "listening on http://127.0.0.1:PORT" when ready.

import cluster from "node:cluster";
import { createServer } from "node:http";
import process from "node:process";

const BODY = "Hello from polybind\n";
cluster.schedulingPolicy = cluster.SCHED_RR;

if (cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < 2; i++) cluster.fork({ WORKER: String(i) });
  cluster.on("listening", (_worker, address) => {
    if (++ready === 2) console.log(`listening on http://127.0.0.1:${address.port}`);
  });
  process.once("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  const headers = { "content-type": "text/plain", "x-polybind-worker": process.env.WORKER };
  createServer({ keepAlive: true }, (_req, res) => res.writeHead(200, headers).end(BODY)).listen(
    Number(process.env.BENCH_PORT ?? 0),
    "127.0.0.1",
  );
}
