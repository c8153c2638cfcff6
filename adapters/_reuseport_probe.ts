// Finds out for real whether two node:net or node:dgram sockets bind one port with reusePort:
// in this process, asynchronously (the usual way: nothing blocks), or in a short-lived child
// of this same runtime, for the synchronous capabilities() asked before any async probe ran.

import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import process from "node:process";

/** A socket that binds with a callback and closes. */
interface Bindable {
  once(event: "error", listener: (err: Error) => void): unknown;
  close(): unknown;
}

function bindOne(transport: "tcp" | "udp", port: number): Promise<{ socket: Bindable; port: number }> {
  return new Promise((resolve, reject) => {
    if (transport === "tcp") {
      const server = createServer();
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port, reusePort: true, exclusive: true }, () => {
        resolve({ socket: server, port: (server.address() as { port: number }).port });
      });
    } else {
      const socket = createSocket({ type: "udp4", reusePort: true } as Parameters<typeof createSocket>[0]);
      // A failed bind leaves a dgram socket open (a failed listen closes its handle itself).
      socket.once("error", (err) => {
        socket.close();
        reject(err);
      });
      socket.bind(port, "127.0.0.1", () => resolve({ socket, port: socket.address().port }));
    }
  });
}

/**
 * Whether a second socket binds the port of a first with reusePort, tried in this process
 * without blocking it.
 *
 * @param transport Which kind of socket to try.
 * @returns `true` only if both binds succeeded.
 */
export async function reusePortBindsHere(transport: "tcp" | "udp"): Promise<boolean> {
  const opened: Bindable[] = [];
  try {
    const first = await bindOne(transport, 0);
    opened.push(first.socket);
    opened.push((await bindOne(transport, first.port)).socket);
    return true;
  } catch {
    return false;
  } finally {
    for (const s of opened) s.close();
  }
}

/**
 * Whether a second socket binds the port of a first with reusePort, in a child process: this
 * blocks for the child's life (about 150 ms), so it serves only a synchronous capabilities()
 * asked before {@linkcode reusePortBindsHere} has answered.
 *
 * @param transport Which kind of socket to try.
 * @returns `true` only if the child saw both binds succeed.
 */
export function reusePortBindsInChild(transport: "tcp" | "udp"): boolean {
  // The child runs reusePortBindsHere of this very module: one probe, in or out of process.
  const script = `import(${JSON.stringify(import.meta.url)}).then((m) => m.reusePortBindsHere(${
    JSON.stringify(transport)
  })).then((yes) => process.stdout.write(yes ? "yes" : "no"))`;
  const child = spawnSync(process.execPath, ["-e", script], {
    encoding: "utf8",
    timeout: 10_000,
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return child.status === 0 && child.stdout === "yes";
}
