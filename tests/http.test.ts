// Hand-off to each runtime's own HTTP server, through the examples, with real HTTP requests.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { capabilities } from "../mod.ts";
import { get, run } from "./_process.ts";
import { tempDir } from "./_helpers.ts";

const T = { timeout: 60_000 };
const runtime = capabilities().runtime;
const only = (r: string) => runtime !== r && `this recipe is for ${r}`;

async function serveAndAsk(example: string, args: string[], n = 5): Promise<string[]> {
  const child = run(example, args);
  try {
    const line = await child.line(/^listening on /);
    const where = line.slice("listening on ".length);
    const bodies: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await get(where);
      assert.equal(res.status, 200);
      bodies.push(res.body);
    }
    return bodies;
  } finally {
    assert.equal(await child.stop(), 0, child.stderr.join(""));
  }
}

describe("Node: http.Server on a polybind listener", { skip: only("node") }, () => {
  test("over TCP", T, async () => {
    const bodies = await serveAndAsk("examples/node-http", ["--port", "0"]);
    assert.ok(bodies.every((b) => b === "hello from node:http on polybind\n"));
  });

  test("over a Unix socket", T, async () => {
    const dir = await tempDir();
    try {
      const bodies = await serveAndAsk("examples/node-http", ["--uds", join(dir.path, "http.sock")]);
      assert.equal(bodies.length, 5);
    } finally {
      await dir.cleanup();
    }
  });

  test("https.Server over TCP", T, async () => {
    const dir = await tempDir();
    try {
      const key = join(dir.path, "key.pem");
      const cert = join(dir.path, "cert.pem");
      const made = spawnSync("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-keyout",
        key,
        "-out",
        cert,
      ]);
      assert.equal(made.status, 0, String(made.stderr));
      const child = run("examples/node-http", ["--port", "0", "--cert", cert, "--key", key]);
      try {
        const url = new URL((await child.line(/^listening on https:/)).slice("listening on ".length));
        const body = await new Promise<string>((resolve, reject) => {
          const req = httpsRequest({ host: url.hostname, port: url.port, rejectUnauthorized: false }, (res) => {
            let text = "";
            res.on("data", (c) => (text += c));
            res.on("end", () => resolve(text));
          });
          req.on("error", reject);
          req.end();
        });
        assert.equal(body, "hello from node:http on polybind\n");
      } finally {
        assert.equal(await child.stop(), 0);
      }
    } finally {
      await dir.cleanup();
    }
  });
});

describe("Deno: Deno.serve on options from a plan", { skip: only("deno") }, () => {
  test("over TCP and a Unix socket", T, async () => {
    await askBothLoopbacks("examples/deno-serve");
    const bodies = await serveAndAsk("examples/deno-serve", ["--port", "0"]);
    assert.ok(bodies.every((b) => b === "hello from Deno.serve on polybind\n"));
    const dir = await tempDir();
    try {
      assert.equal((await serveAndAsk("examples/deno-serve", ["--uds", join(dir.path, "d.sock")])).length, 5);
    } finally {
      await dir.cleanup();
    }
  });
});

/** Runs a serve example on localhost and asks both of its loopback addresses. */
async function askBothLoopbacks(example: string): Promise<void> {
  const child = run(example, ["--host", "localhost", "--port", "0"]);
  try {
    const v4 = (await child.line(/^listening on http:\/\/127\.0\.0\.1:/)).slice("listening on ".length);
    const v6 = (await child.line(/^listening on http:\/\/\[::1\]:/)).slice("listening on ".length);
    assert.equal((await get(v4)).status, 200);
    assert.equal((await get(v6)).status, 200);
  } finally {
    assert.equal(await child.stop(), 0, child.stderr.join(""));
  }
}

describe("Bun: Bun.serve on options from a plan", { skip: only("bun") }, () => {
  test("localhost answers on 127.0.0.1 and ::1", T, () => askBothLoopbacks("examples/bun-serve"));

  test("over TCP and a Unix socket", T, async () => {
    const bodies = await serveAndAsk("examples/bun-serve", ["--port", "0"]);
    assert.ok(bodies.every((b) => b === "hello from Bun.serve on polybind\n"));
    const dir = await tempDir();
    try {
      assert.equal((await serveAndAsk("examples/bun-serve", ["--uds", join(dir.path, "b.sock")])).length, 5);
    } finally {
      await dir.cleanup();
    }
  });
});

test("the echo example echoes on every runtime", T, async () => {
  const child = run("examples/echo");
  try {
    const line = await child.line(/^listening on tcp:/);
    const port = Number(line.split(":").pop());
    const { exchange } = await import("./_helpers.ts");
    assert.equal(await exchange(port, "ping"), "ping");
  } finally {
    assert.equal(await child.stop(), 0);
  }
});
