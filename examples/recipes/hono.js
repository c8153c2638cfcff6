// hono.js: hono_app.js on 2 workers (node hono.js: Node.js 20 runs no TypeScript).
import process from "node:process";
import { supervise } from "../../mod.ts";

const port = Number(process.env.PORT ?? 8000);
await supervise({ app: new URL("./hono_app.js", import.meta.url), listen: { port }, workers: 2 });
console.log(`listening on http://127.0.0.1:${port}`);
