// The app `polybind serve` runs without APP: a fetch app that says hello and which worker
// answered (x-polybind-worker), and with the PROXY protocol the client it saw (x-polybind-client).

import { formatAddress, workerContext } from "../mod.ts";
import type { FetchApp } from "../mod.ts";

const BODY = "Hello from polybind\n";
const worker = workerContext();
const headers = { "content-type": "text/plain", "x-polybind-worker": `${worker.generation}.${worker.index}` };
const showClient = worker.plans.some((p) => p.proxyProtocol !== undefined);

const app: FetchApp = {
  fetch(_request, info) {
    if (!showClient || info.remoteAddr.transport !== "tcp") return new Response(BODY, { headers });
    const client = formatAddress({ host: info.remoteAddr.hostname, port: info.remoteAddr.port });
    return new Response(BODY, { headers: { ...headers, "x-polybind-client": client } });
  },
};
export default app;
