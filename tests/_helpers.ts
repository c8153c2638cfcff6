// Test helpers: real clients on loopback, temporary folders, and other-process servers.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Conn, Listener } from "../mod.ts";

/** The port of a TCP listener. */
export function portOf(listener: Listener): number {
  if (listener.addr.transport !== "tcp") throw new Error("not a TCP listener");
  return listener.addr.port;
}

/** Connects a node:net client (TCP when given a port, Unix when given a path). */
export function dial(to: number | string, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = typeof to === "number"
      ? connect({ port: to, host, allowHalfOpen: true })
      : connect({ path: to, allowHalfOpen: true });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Sends `text`, half-closes, and resolves with everything the server sent back. */
export async function exchange(to: number | string, text: string, host?: string): Promise<string> {
  const socket = await dial(to, host);
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.end(text);
  await new Promise<void>((resolve, reject) => {
    socket.once("close", () => resolve());
    socket.once("error", reject);
  });
  return Buffer.concat(chunks).toString();
}

/**
 * Opens `n` node:net clients to `port`; `send` writes each one's request. Resolves once all are
 * connected, with each client's reply, `"closed"` if none came, or `"error CODE"`.
 */
export async function openClients(
  port: number,
  n: number,
  send: (socket: Socket, i: number) => void,
): Promise<Promise<string>[]> {
  let connected = 0;
  const replies = Array.from({ length: n }, (_, i) =>
    new Promise<string>((resolve) => {
      const socket = connect({ port, host: "127.0.0.1" }, () => void connected++);
      let reply = "";
      socket.on("data", (chunk: Buffer) => void (reply += chunk.toString()));
      socket.on("error", (err: { code?: string }) => resolve(`error ${err.code}`));
      socket.on("close", () => resolve(reply === "" ? "closed" : reply));
      send(socket, i);
    }));
  for (const end = Date.now() + 20_000; connected < n;) {
    if (Date.now() > end) throw new Error(`only ${connected} of ${n} clients connected within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return replies;
}

/** Reads a connection to its end. */
export async function readAll(conn: Conn): Promise<string> {
  const buf = new Uint8Array(65536);
  let text = "";
  const decoder = new TextDecoder();
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
  return text;
}

/** Serves `listener`: echoes each connection back in upper case, then closes it. */
export async function serveUpper(listener: Listener, served: { count: number } = { count: 0 }): Promise<void> {
  for await (const conn of listener) {
    served.count++;
    void (async () => {
      try {
        const text = await readAll(conn);
        await conn.write(new TextEncoder().encode(text.toUpperCase()));
      } finally {
        conn.close();
      }
    })();
  }
}

/**
 * Serves `listener`: answers each line-terminated request with `OK <request>`; counts accepts,
 * and connections that failed (a client that went away).
 */
export async function serveLines(listener: Listener, served = { count: 0, errors: 0 }): Promise<void> {
  for await (const conn of listener) {
    served.count++;
    void (async () => {
      try {
        const buf = new Uint8Array(256);
        let text = "";
        for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
          text += new TextDecoder().decode(buf.subarray(0, n));
          if (text.includes("\n")) break;
        }
        await conn.write(new TextEncoder().encode(`OK ${text}`));
      } catch {
        served.errors++;
      } finally {
        conn.close();
      }
    })();
  }
}

/** A fresh temporary folder with a short path, removed by `cleanup`. */
export async function tempDir(): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "pb-"));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Runs a Node.js server in another process listening on the Unix socket `path`. It never
 * outlives the test run: it exits when our end of its stdin closes (we exit or die, even by a
 * test timeout that skipped kill()), and after 60 s at the latest.
 */
export async function otherProcessServer(
  path: string,
): Promise<{ kill(signal?: "SIGKILL" | "SIGTERM"): Promise<void> }> {
  const code = `const s=require("net").createServer(c=>{c.on("error",()=>{});c.end("other")});` +
    `s.listen(${JSON.stringify(path)},()=>process.stdout.write("ready"));` +
    `process.stdin.on("end",()=>process.exit(0)).on("error",()=>process.exit(0)).resume();` +
    `setTimeout(()=>process.exit(0),60000)`;
  const child = spawn("node", ["-e", code], { stdio: ["pipe", "pipe", "inherit"] });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.off("exit", killOnExit));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (status) => reject(new Error(`server exited with ${status}`)));
  });
  return {
    kill: (signal = "SIGKILL") =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill(signal);
      }),
  };
}

/** Leaves a stale socket file at `path`: a server in another process is killed without cleanup. */
export async function leaveStaleSocket(path: string): Promise<void> {
  const server = await otherProcessServer(path);
  await server.kill("SIGKILL");
}

/** Settles as `promise` does, or rejects once `ms` have passed: a hang fails the test instead of stalling it. */
export async function within<V>(promise: Promise<V>, what: string, ms = 5_000): Promise<V> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
