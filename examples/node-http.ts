// Node.js: an http.Server (or https.Server with --cert and --key) listening on a polybind
// listener, on TCP (--port, default 0) or a Unix socket (--uds PATH).

import { readFileSync } from "node:fs";
import { createServer as createHttp, type RequestListener } from "node:http";
import { createServer as createHttps } from "node:https";
import process from "node:process";
import { parseArgs } from "node:util";
import { createListener, handOffConnections } from "../mod.ts";

const { values } = parseArgs({
  options: { port: { type: "string" }, uds: { type: "string" }, cert: { type: "string" }, key: { type: "string" } },
});
const listener = await createListener(values.uds ? { uds: values.uds } : { port: Number(values.port ?? 0) });
const handler: RequestListener = (_req, res) => res.end("hello from node:http on polybind\n");
const server = values.cert && values.key
  ? createHttps({ cert: readFileSync(values.cert), key: readFileSync(values.key) }, handler)
  : createHttp(handler);
// The hand-off: every accepted connection goes to the http server. (Over TCP,
// `server.listen(listener.native)` works too; Node cannot take over a Unix socket that way.)
const serving = handOffConnections(listener, server);
const a = listener.addr;
const scheme = values.cert ? "https" : "http";
console.log(`listening on ${a.transport === "tcp" ? `${scheme}://${a.hostname}:${a.port}` : `unix:${a.path}`}`);
const stop = () => {
  void listener.close();
  server.closeAllConnections();
  void serving;
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
