// hono.ts: hono_app.ts on 2 workers (deno run -A hono.ts, bun hono.ts).
import process from "node:process";
import { supervise } from "../../mod.ts";

const port = Number(process.env.PORT ?? 8000);
await supervise({ app: new URL("./hono_app.ts", import.meta.url), listen: { port }, workers: 2 });
console.log(`listening on http://127.0.0.1:${port}`);
