// Bun: Bun.serve on the targets of a polybind plan (reuseport where it works; one server per
// address, so localhost answers on 127.0.0.1 and ::1; a Unix socket gets its exact mode).
// bun examples/bun-serve.ts [--port P | --host H | --uds PATH]

import process from "node:process";
import { parseArgs } from "node:util";
import { formatAddress, planListeners, preparePlan, serveTargets } from "../mod.ts";

declare const Bun: {
  serve(options: Record<string, unknown>): { stop(force?: boolean): Promise<void> };
};

const { values } = parseArgs({
  options: { port: { type: "string" }, host: { type: "string" }, uds: { type: "string" } },
});
const prepared = await preparePlan(
  planListeners(values.uds ? { uds: values.uds } : { host: values.host, port: Number(values.port ?? 0) }, 1),
);
await prepared.release();
const servers: { stop(force?: boolean): Promise<void> }[] = [];
const targets = await serveTargets(prepared.plan, 0);
for (const target of targets) {
  servers.push(Bun.serve({ ...target.options, fetch: () => new Response("hello from Bun.serve on polybind\n") }));
  await target.listening();
}
// One line per address: http://127.0.0.1:8000, http://[::1]:8000, or unix:/path.
const a = prepared.plan.address;
const urls = a.transport === "tcp"
  ? (prepared.plan.resolved ?? [a.hostname]).map((ip) => `http://${formatAddress({ host: ip, port: a.port })}`)
  : [`unix:${"path" in a ? a.path : a.spec}`];
for (const url of urls) console.log(`listening on ${url}`);
const stop = async () => {
  for (const server of servers) await server.stop(true);
  for (const target of targets) await target.close();
  await prepared.close();
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
