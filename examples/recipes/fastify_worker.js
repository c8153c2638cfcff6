// fastify_worker.js: each worker builds its Fastify app and serves app.server on its sockets.
import Fastify from "fastify";
import { workerContext } from "../../mod.ts";

const app = Fastify();
app.get("/", () => "Hello from Fastify\n");
await app.ready();
await workerContext().serveNode(app.server);
