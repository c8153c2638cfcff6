// An echo server on any runtime: `node|bun|deno run -A` this file, then `nc 127.0.0.1 <port>`.
// Accepts with a polybind Listener and echoes through Conn.read/Conn.write.

import process from "node:process";
import { type Conn, createListener } from "../mod.ts";

async function echo(conn: Conn): Promise<void> {
  const buf = new Uint8Array(16 * 1024);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) await conn.write(buf.subarray(0, n));
  } finally {
    conn.close();
  }
}

const listener = await createListener({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0) });
const addr = listener.addr;
console.log(`listening on ${addr.transport === "tcp" ? `tcp://${addr.hostname}:${addr.port}` : addr.path}`);
process.once("SIGTERM", () => void listener.close());
process.once("SIGINT", () => void listener.close());
for await (const conn of listener) void echo(conn);
