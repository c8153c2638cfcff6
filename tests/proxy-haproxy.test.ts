// The PROXY protocol behind the real HAProxy (a Debian package; .ci/run installs it), started by
// each test on loopback with a generated config: send-proxy (v1), send-proxy-v2, and
// send-proxy-v2 with proxy-v2-options unique-id,crc32c and health checks (which send LOCAL). A
// client bound to 127.0.0.5 goes through HAProxy to a polybind listener, which must see
// 127.0.0.5 and the client's port, as must node:http through handOffConnections and the
// command's workers. Skipped, saying why, only where haproxy is not installed.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { createListener, type Listener, type ServerConfig, supervise, withProxyProtocol } from "../mod.ts";
import { projectFile } from "./_process.ts";
import { portOf, tempDir } from "./_helpers.ts";
import { parseSeen, type Seen, serveSeen, talk, until } from "./_proxy_net.ts";

const T = { timeout: 30_000 };
const CLIENT = "127.0.0.5";

/** The haproxy executable: on PATH, or where Debian puts it (/usr/sbin is not on every PATH). */
const HAPROXY = ["haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"].find((exe) =>
  (exe.includes("/") ? existsSync(exe) : true) && spawnSync(exe, ["-v"], { stdio: "ignore" }).status === 0
);
const skip = HAPROXY === undefined &&
  "haproxy is not installed (apt-get install haproxy; .ci/run installs it): the HAProxy tests are skipped";

/** A free loopback port right now: bound on port 0, then closed (HAProxy cannot report a port 0 bind). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One way through HAProxy: a frontend port, and what its backend's one server line says. */
interface Route {
  /** HAProxy's `server` address: `127.0.0.1:PORT` or `unix@PATH`. */
  readonly server: string;
  /** What follows it, as in `send-proxy-v2 check`. */
  readonly options: string;
  /** Lines for the frontend, as in `unique-id-format %ci:%cp`. */
  readonly frontend?: string;
}

function config(routes: Route[], ports: number[], ready: number): string {
  const lines = [
    "global",
    "  nbthread 1",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    // Accepts and closes at once: bound means every frontend is bound (HAProxy binds all first).
    "frontend ready",
    `  bind 127.0.0.1:${ready}`,
    "  tcp-request connection reject",
  ];
  routes.forEach((route, i) => {
    lines.push(`frontend f${i}`, `  bind 127.0.0.1:${ports[i]}`, `  default_backend b${i}`);
    if (route.frontend !== undefined) lines.push(`  ${route.frontend}`);
    lines.push(`backend b${i}`, `  server s${i} ${route.server} ${route.options}`);
  });
  return lines.join("\n") + "\n";
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("close", () => resolve());
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const { socket } = talk(port, []);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Runs HAProxy with `routes`, on free ports picked just before it starts (tried again, up to 5
 * times, if another program took one meanwhile), calls `fn` with the frontends' ports, and
 * stops HAProxy whatever happens.
 */
async function withHaproxy(routes: Route[], fn: (ports: number[]) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    for (let attempt = 1;; attempt++) {
      const ports = await Promise.all(routes.map(() => freePort()));
      const ready = await freePort();
      const file = join(dir.path, "haproxy.cfg");
      await writeFile(file, config(routes, ports, ready));
      const child = spawn(HAPROXY!, ["-f", file, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr!.on("data", (chunk: Uint8Array) => void (stderr += String(chunk)));
      const kill = () => child.kill("SIGKILL");
      process.once("exit", kill);
      try {
        let up = false;
        for (const end = Date.now() + 10_000; !up && child.exitCode === null && Date.now() < end;) {
          up = await accepts(ready);
          if (!up) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        if (!up) {
          if (attempt < 5 && /cannot bind|Address already in use/i.test(stderr)) continue;
          throw new Error(`HAProxy did not start (exit ${child.exitCode}): ${stderr}`);
        }
        await fn(ports);
        return;
      } finally {
        child.kill("SIGTERM");
        const timer = setTimeout(kill, 3000);
        await exited(child);
        clearTimeout(timer);
        process.off("exit", kill);
      }
    }
  } finally {
    await dir.cleanup();
  }
}

/** A polybind listener with the PROXY protocol (HAProxy connects from 127.0.0.1), served by serveSeen. */
async function withPolybind(
  config: ServerConfig,
  fn: (listener: Listener, served: Seen[]) => Promise<void>,
): Promise<void> {
  const listener = withProxyProtocol(await createListener(config), { trusted: ["127.0.0.1"] });
  const served: Seen[] = [];
  const serving = serveSeen(listener, served);
  try {
    await fn(listener, served);
  } finally {
    await listener.close();
    await serving;
  }
}

/** Sends a line from 127.0.0.5 through HAProxy's `port`; resolves with what the server saw, and the client's port. */
async function viaHaproxy(port: number): Promise<{ seen: Seen; clientPort: number }> {
  const client = talk(port, ["hello\n"], { localAddress: CLIENT });
  const clientPort = await client.connected;
  const reply = await client.reply;
  assert.notEqual(reply, "", "the server answered through HAProxy");
  return { seen: parseSeen(reply), clientPort };
}

describe("behind HAProxy", { skip }, () => {
  for (const options of ["send-proxy", "send-proxy-v2"]) {
    test(`${options}: the listener sees the client's address and port`, T, async () => {
      await withPolybind({ host: "127.0.0.1", port: 0 }, async (listener) => {
        await withHaproxy([{ server: `127.0.0.1:${portOf(listener)}`, options }], async ([port]) => {
          for (let i = 0; i < 3; i++) {
            const { seen, clientPort } = await viaHaproxy(port!);
            assert.deepEqual(seen.remote, { transport: "tcp", hostname: CLIENT, port: clientPort });
            assert.deepEqual(seen.local, { transport: "tcp", hostname: "127.0.0.1", port });
            assert.equal(seen.proxy?.version, options === "send-proxy" ? 1 : 2);
            assert.equal(seen.first, "hello\n");
          }
        });
      });
    });
  }

  test("send-proxy-v2 with unique-id and crc32c, and health checks that send LOCAL", T, async () => {
    await withPolybind({ host: "127.0.0.1", port: 0 }, async (listener, served) => {
      const route = {
        server: `127.0.0.1:${portOf(listener)}`,
        options: "send-proxy-v2 proxy-v2-options unique-id,crc32c check inter 50",
        frontend: "unique-id-format %ci:%cp",
      };
      await withHaproxy([route], async ([port]) => {
        const { seen, clientPort } = await viaHaproxy(port!);
        assert.deepEqual(seen.remote, { transport: "tcp", hostname: CLIENT, port: clientPort });
        assert.equal(seen.proxy?.uniqueId, `${CLIENT}:${clientPort}`);
        assert.equal(typeof seen.proxy?.crc32c, "number", "a CRC32C, checked");
        await until(() => served.some((s) => s.proxy?.command === "local"), 10_000, "a health check");
        const check = served.find((s) => s.proxy?.command === "local")!;
        assert.equal(check.remote.transport === "tcp" && check.remote.hostname, "127.0.0.1", "the real peer");
      });
    });
  });

  test("send-proxy-v2 to a polybind Unix socket", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "app.sock");
      await withPolybind({ uds: path }, async () => {
        await withHaproxy([{ server: `unix@${path}`, options: "send-proxy-v2" }], async ([port]) => {
          const { seen, clientPort } = await viaHaproxy(port!);
          assert.deepEqual(seen.remote, { transport: "tcp", hostname: CLIENT, port: clientPort });
        });
      });
    } finally {
      await dir.cleanup();
    }
  });

  test("node:http through handOffConnections and the command's worker: the client is 127.0.0.5", T, async () => {
    const server = await supervise({
      app: pathToFileURL(projectFile("cli/demo_app")),
      listen: { host: "127.0.0.1", port: 0, proxyProtocol: { trusted: ["127.0.0.1"] } },
      workers: 1,
      signals: false,
    });
    const address = server.plans[0]!.address;
    try {
      assert.ok(address.transport === "tcp");
      await withHaproxy([{ server: `127.0.0.1:${address.port}`, options: "send-proxy-v2" }], async ([port]) => {
        for (let i = 0; i < 2; i++) {
          const { client, seenBy } = await new Promise<{ client: string; seenBy: string }>((resolve, reject) => {
            const req = request({ host: "127.0.0.1", port, localAddress: CLIENT, agent: false }, (res) => {
              res.resume();
              res.on(
                "end",
                () => resolve({ client: `${CLIENT}:${clientPort}`, seenBy: String(res.headers["x-polybind-client"]) }),
              );
            });
            let clientPort = 0;
            req.on("socket", (socket) => socket.once("connect", () => (clientPort = socket.localPort ?? 0)));
            req.on("error", reject);
            req.end();
          });
          assert.equal(seenBy, client);
        }
      });
    } finally {
      await server.stop();
    }
  });
});
