// fastify.js: fastify_worker.js on 2 workers (node fastify.js).
import process from "node:process";
import { supervise } from "../../mod.ts";

const port = Number(process.env.PORT ?? 8000);
await supervise({ worker: new URL("./fastify_worker.js", import.meta.url), listen: { port }, workers: 2 });
console.log(`listening on http://127.0.0.1:${port}`);
