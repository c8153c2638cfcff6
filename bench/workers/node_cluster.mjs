// Node.js's own multi-worker option: node:cluster, 2 workers, each a node:http server. By
// default it serves bench/workers/app.js through srvx's Node.js adapter (`toNodeHandler`, the
// adapter `polybind serve` uses); with `plain` it answers the same body from node:http itself,
// to show what the fetch adapter costs. Scheduling: `rr` (round-robin, Node's default: the
// primary accepts and hands each connection to a worker) or `none` (every worker accepts from
// the one shared socket, as polybind's workers do).
// Usage: node bench/workers/node_cluster.mjs [rr|none] [srvx|plain]
// Prints "listening on http://127.0.0.1:PORT" once both workers listen.

import cluster from "node:cluster";
import { createServer } from "node:http";
import process from "node:process";

const [sched = "rr", handler = "srvx"] = process.argv.slice(2);
if (!["rr", "none"].includes(sched) || !["srvx", "plain"].includes(handler)) {
  throw new TypeError(
    `Cannot start as the arguments must be [rr|none] [srvx|plain]: current value is ${process.argv.slice(2)}`,
  );
}
cluster.schedulingPolicy = sched === "rr" ? cluster.SCHED_RR : cluster.SCHED_NONE;

if (cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < 2; i++) cluster.fork();
  cluster.on("listening", (_worker, address) => {
    if (++ready === 2) console.log(`listening on http://127.0.0.1:${address.port}`);
  });
  process.once("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  let listener;
  if (handler === "plain") {
    const BODY = "Hello from polybind\n";
    const headers = { "content-type": "text/plain" };
    listener = (_req, res) => res.writeHead(200, headers).end(BODY);
  } else {
    const { toNodeHandler } = await import("srvx/node");
    const app = (await import("./app.js")).default;
    listener = toNodeHandler(app.fetch);
  }
  createServer({ keepAlive: true }, listener).listen(0, "127.0.0.1");
}
