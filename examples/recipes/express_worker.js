// express_worker.js: each worker builds its Express app and serves it on its sockets.
import { createServer } from "node:http";
import express from "express";
import { workerContext } from "../../mod.ts";

const app = express();
app.get("/", (_req, res) => res.send("Hello from Express\n"));
await workerContext().serveNode(createServer(app));
