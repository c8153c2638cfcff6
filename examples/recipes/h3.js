// h3.js: h3_app.js on 2 workers (node h3.js, bun h3.js, deno run -A h3.js).
import process from "node:process";
import { supervise } from "../../mod.ts";

const port = Number(process.env.PORT ?? 8000);
await supervise({ app: new URL("./h3_app.js", import.meta.url), listen: { port }, workers: 2 });
console.log(`listening on http://127.0.0.1:${port}`);
