// Bun: Bun.serve on options derived from a polybind plan (reuseport where it works).
// bun examples/bun-serve.ts [--port P | --uds PATH]

import process from "node:process";
import { parseArgs } from "node:util";
import { planListeners, preparePlan, serveOptions } from "../mod.ts";

declare const Bun: {
  serve(options: Record<string, unknown>): { url: URL; stop(force?: boolean): Promise<void> };
};

const { values } = parseArgs({ options: { port: { type: "string" }, uds: { type: "string" } } });
const prepared = await preparePlan(
  planListeners(values.uds ? { uds: values.uds } : { port: Number(values.port ?? 0) }, 1),
);
await prepared.release();
const options = await serveOptions(prepared.plan, 0);
const server = Bun.serve({ ...options, fetch: () => new Response("hello from Bun.serve on polybind\n") });
console.log(`listening on ${"unix" in options ? `unix:${options.unix}` : server.url.href.replace(/\/$/, "")}`);
const stop = () => void server.stop(true).then(() => prepared.close());
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
