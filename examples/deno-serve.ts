// Deno: Deno.serve on options derived from a polybind plan (reuseport where it works).
// deno run -A --unstable-net examples/deno-serve.ts [--port P | --uds PATH]

import { parseArgs } from "node:util";
import { planListeners, preparePlan, serveOptions } from "../mod.ts";

const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string" }, uds: { type: "string" } } });
const prepared = await preparePlan(
  planListeners(values.uds ? { uds: values.uds } : { port: Number(values.port ?? 0) }, 1),
);
await prepared.release();
const options = await serveOptions(prepared.plan, 0);
const server = Deno.serve({
  ...options,
  onListen(addr) {
    console.log(`listening on ${"path" in addr ? `unix:${addr.path}` : `http://${addr.hostname}:${addr.port}`}`);
  },
}, () => new Response("hello from Deno.serve on polybind\n"));
const stop = () => void server.shutdown().then(() => prepared.close());
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
