// Bun's own multi-worker option: 2 processes each running Bun.serve with reusePort on one port,
// serving bench/workers/app.js. Prints "listening on http://127.0.0.1:PORT" when ready.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";
import app from "./app.js";

if (process.env.WORKER !== undefined) {
  Bun.serve({ hostname: "127.0.0.1", port: Number(process.env.PORT), reusePort: true, fetch: app.fetch });
  console.log("ready");
} else {
  // A free port for both workers to share.
  const probe = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => probe.once("listening", resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  let ready = 0;
  const children = [0, 1].map((i) => {
    const child = spawn(process.execPath, [process.argv[1]], {
      env: { ...process.env, WORKER: String(i), PORT: String(port) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.stdout.on("data", () => {
      if (++ready === 2) console.log(`listening on http://127.0.0.1:${port}`);
    });
    return child;
  });
  process.once("SIGTERM", () => {
    for (const c of children) c.kill("SIGTERM");
    process.exit(0);
  });
}
