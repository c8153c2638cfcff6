// The PROXY protocol on the way to node:http, on every runtime: handOffConnections from a listener
// wrapped by withProxyProtocol gives the server `req.socket.remoteAddress` (and port, and the
// local ones) from the header, with the bytes after the header as the first request, over
// kept-alive connections, TCP and Unix; and the command's node:http workers (cli/http.ts) say
// the client in `x-polybind-client`.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { projectFile, run } from "./_process.ts";
import { pathToFileURL } from "node:url";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { createListener, handOffConnections, type ServerConfig, supervise, withProxyProtocol } from "../mod.ts";
import { canCountFds, fdTargets, leakedFds } from "./_fd.ts";
import { portOf, tempDir } from "./_helpers.ts";
import { tcpHeader } from "./_proxy_net.ts";

const T = { timeout: 30_000 };

/** A kept-alive HTTP/1.1 client on one raw socket, which sends `first` (a PROXY header) before its first request. */
class RawHttp {
  readonly #socket: Socket;
  #buffered = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(to: number | string, first: Uint8Array) {
    this.#socket = typeof to === "number" ? connect({ port: to, host: "127.0.0.1" }) : connect({ path: to });
    this.#socket.on("error", () => {});
    this.#socket.write(first);
    this.#socket.on("data", (chunk: Buffer) => {
      this.#buffered = Buffer.concat([this.#buffered, chunk]);
      this.#wake?.();
    });
    this.#socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  /** Sends one request and resolves with its response's head and body, or `undefined` if the server closed. */
  async request(method: string, body = ""): Promise<{ head: string; body: string } | undefined> {
    const length = Buffer.byteLength(body);
    this.#socket.write(`${method} / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n${body}`);
    while (true) {
      const end = this.#buffered.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = this.#buffered.subarray(0, end).toString();
        const size = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (this.#buffered.length >= end + 4 + size) {
          const text = this.#buffered.subarray(end + 4, end + 4 + size).toString();
          this.#buffered = this.#buffered.subarray(end + 4 + size);
          return { head, body: text };
        }
      }
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.once("close", () => resolve());
      this.#socket.end();
    });
  }
}

/** What the server saw of a request's socket, and its body. */
function echoSocket(req: IncomingMessage, res: ServerResponse): void {
  let body = "";
  req.on("data", (chunk: Buffer) => void (body += chunk.toString()));
  req.on("end", () => {
    const s = req.socket;
    res.end(
      JSON.stringify({ remote: `${s.remoteAddress}:${s.remotePort}`, local: `${s.localAddress}:${s.localPort}`, body }),
    );
  });
}

async function withHttp(config: ServerConfig, fn: (to: number | string) => Promise<void>): Promise<void> {
  const before = canCountFds ? fdTargets() : undefined;
  const listener = withProxyProtocol(await createListener(config), { trusted: ["127.0.0.1"] });
  const server = createServer({ keepAlive: true }, echoSocket);
  const serving = handOffConnections(listener, server);
  try {
    await fn(listener.addr.transport === "tcp" ? portOf(listener) : listener.addr.path);
  } finally {
    await listener.close();
    await serving;
    server.closeAllConnections();
  }
  if (before !== undefined) assert.deepEqual(await leakedFds(before), [], "no descriptor left open");
}

describe("handOffConnections and node:http behind a PROXY header", () => {
  for (const version of [1, 2] as const) {
    test(`v${version}: req.socket has the client's address on every kept-alive request, bodies intact`, T, async () => {
      await withHttp({ host: "127.0.0.1", port: 0 }, async (to) => {
        const client = new RawHttp(to, tcpHeader(version));
        try {
          for (const [method, body] of [["POST", "first body"], ["GET", ""], ["POST", "x".repeat(70_000)]]) {
            const res = await client.request(method!, body);
            assert.ok(res !== undefined, "answered");
            assert.match(res.head, /^HTTP\/1\.1 200/);
            const seen = JSON.parse(res.body);
            assert.equal(seen.remote, "203.0.113.7:51000");
            assert.equal(seen.local, "192.0.2.1:443");
            assert.equal(seen.body, body);
          }
        } finally {
          await client.close();
        }
      });
    });
  }

  test("the header and a request in one write, then a half-close", T, async () => {
    await withHttp({ host: "127.0.0.1", port: 0 }, async (to) => {
      const request = Buffer.from("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
      for (const version of [1, 2] as const) {
        const reply = await new Promise<string>((resolve) => {
          let text = "";
          const socket = connect({ port: to as number, host: "127.0.0.1" });
          socket.on("data", (c: Buffer) => void (text += c.toString()));
          socket.on("close", () => resolve(text));
          socket.end(Buffer.concat([tcpHeader(version), request]));
        });
        assert.match(reply, /"remote":"203\.0\.113\.7:51000".*"body":"hi"/);
      }
    });
  });

  test("over a Unix socket", T, async () => {
    const dir = await tempDir();
    try {
      await withHttp({ uds: join(dir.path, "http.sock") }, async (to) => {
        const client = new RawHttp(to, tcpHeader(2));
        try {
          const res = await client.request("GET");
          assert.equal(JSON.parse(res!.body).remote, "203.0.113.7:51000");
        } finally {
          await client.close();
        }
      });
    } finally {
      await dir.cleanup();
    }
  });

  test(
    "a socket handed to a reader of its own streams the bytes after the header in order, with back-pressure",
    T,
    async () => {
      // Not node:http, which reads the socket's handle itself: a sink that echoes through the
      // socket's own stream (pipe, so pause and resume), as Deno's and Bun's node:http read it.
      const listener = withProxyProtocol(await createListener({ host: "127.0.0.1", port: 0 }), {
        trusted: ["127.0.0.1"],
      });
      const sink = new EventEmitter() as EventEmitter & { listening?: boolean };
      sink.listening = true;
      const seen: string[] = [];
      sink.on("connection", (socket: Socket) => {
        seen.push(`${socket.remoteAddress}:${socket.remotePort}`);
        socket.pipe(socket);
      });
      const serving = handOffConnections(listener, sink);
      try {
        const payload = Buffer.alloc(2 * 1024 * 1024);
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
        const echoed = await new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          const socket = connect({ port: portOf(listener), host: "127.0.0.1" });
          socket.on("error", reject);
          socket.on("data", (c: Buffer) => chunks.push(c));
          socket.on("end", () => resolve(Buffer.concat(chunks)));
          // The header and the first bytes in one write, so that some are read with the header.
          socket.write(Buffer.concat([tcpHeader(2), payload.subarray(0, 1000)]));
          socket.end(payload.subarray(1000));
        });
        assert.equal(echoed.length, payload.length);
        assert.ok(echoed.equals(payload), "the bytes after the header come back in order");
        assert.deepEqual(seen, ["203.0.113.7:51000"]);
      } finally {
        await listener.close();
        await serving;
      }
    },
  );

  test("a request without a header never reaches the server", T, async () => {
    await withHttp({ host: "127.0.0.1", port: 0 }, async (to) => {
      const client = new RawHttp(to, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      assert.equal(await client.request("GET"), undefined);
      await client.close();
    });
  });
});

describe("the command's node:http workers with --proxy-protocol", () => {
  const ask = async (to: number) => {
    const client = new RawHttp(to, tcpHeader(2));
    try {
      return (await client.request("GET"))?.head ?? "";
    } finally {
      await client.close();
    }
  };

  test("polybind serve --proxy-protocol answers with the header's client from every worker", T, async () => {
    const child = run("cli/polybind", ["serve", "--port", "0", "--workers", "2", "--proxy-protocol"]);
    try {
      const line = await child.line(/^polybind serve: listening on /, 30_000);
      const port = Number(/:(\d+)/.exec(line.split(" ")[4]!)![1]);
      const heads = [];
      for (let i = 0; i < 6; i++) heads.push(await ask(port));
      for (const head of heads) assert.match(head, /x-polybind-client: 203\.0\.113\.7:51000/i);
      const client = new RawHttp(port, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      assert.equal(await client.request("GET"), undefined, "no header: closed");
      await client.close();
      assert.equal(await child.stop("SIGINT"), 0, child.stderr.join(""));
    } finally {
      await child.stop();
    }
  });

  test("supervise() serves a fetch app behind the PROXY protocol with node:http on every runtime", T, async () => {
    const server = await supervise({
      app: pathToFileURL(projectFile("cli/demo_app")),
      listen: { host: "127.0.0.1", port: 0, proxyProtocol: true },
      workers: 1,
      signals: false,
    });
    try {
      const address = server.plans[0]!.address;
      assert.ok(address.transport === "tcp");
      const head = await ask(address.port);
      assert.match(head, /x-polybind-client: 203\.0\.113\.7:51000/i);
      assert.match(head, /x-polybind-worker: 1\.0/i);
    } finally {
      assert.deepEqual((await server.stop()).served, [1]);
    }
  });
});
