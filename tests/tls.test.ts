// HTTPS on the supervisor and the command: certificate and key files checked (checkTls) and
// read by each worker, 2 workers answering HTTPS with the certificate given, the ALPN protocol
// each runtime's server negotiates, rotation by reload (files replaced, reload(), new handshakes
// present the new certificate, no request fails meanwhile), a bad key at start and at reload,
// and `polybind serve --tls-cert --tls-key`. Certificates are made by openssl in a temp dir.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { type ClientHttp2Session, connect as http2Connect } from "node:http2";
import { Agent, request } from "node:https";
import { join, relative } from "node:path";
import process from "node:process";
import { connect as tlsConnect } from "node:tls";
import { pathToFileURL } from "node:url";
import { capabilities, type Handover, supervise, type Supervisor } from "../mod.ts";
import { checkTls } from "../src/_tls.ts";
import { parseCommand } from "../cli/args.ts";
import { projectFile, run } from "./_process.ts";
import { tempDir, within } from "./_helpers.ts";

const T = { timeout: 90_000 };
const runtime = capabilities().runtime;
const APP = pathToFileURL(projectFile("tests/fixtures/life_app"));

interface Pair {
  cert: string;
  key: string;
  /** The certificate's SHA-256 fingerprint, as getPeerCertificate() writes it. */
  fingerprint: string;
  pem: string;
}

/** Makes a self-signed certificate for 127.0.0.1 and localhost, and its key, in `dir`. */
function makeCertificate(dir: string, name: string): Promise<Pair> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const args = [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
    ...["-keyout", key, "-out", cert, "-subj", `/CN=polybind test ${name}`],
    ...["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
  ];
  return new Promise((resolve, reject) => {
    execFile("openssl", args, { timeout: 20_000 }, async (err, _out, stderr) => {
      if (err) return reject(new Error(`openssl failed: ${stderr || err.message}`));
      const pem = await readFile(cert, "utf8");
      resolve({ cert, key, pem, fingerprint: new X509Certificate(pem).fingerprint256 });
    });
  });
}

/** A TLS handshake with `port`: the protocol ALPN chose and the fingerprint of the certificate shown. */
function handshake(port: number, alpn = ["h2", "http/1.1"]): Promise<{ alpn: string | false; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ALPNProtocols: alpn, rejectUnauthorized: false }, () => {
      const found = { alpn: socket.alpnProtocol ?? false, fingerprint: socket.getPeerCertificate().fingerprint256 };
      socket.end();
      socket.destroy();
      resolve(found);
    });
    socket.once("error", reject);
  });
}

/**
 * One HTTPS GET (HTTP/1.1) on a fresh connection, or on `agent`'s kept-alive one, the
 * certificates `ca` trusted: status, body, worker.
 */
function get(
  port: number,
  ca: string[],
  agent: Agent | false = false,
): Promise<{ status: number; body: string; worker?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", ca, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        const worker = res.headers["x-polybind-worker"];
        resolve({ status: res.statusCode ?? 0, body, ...(typeof worker === "string" ? { worker } : {}) });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** One GET on an HTTP/2 session: status, body and worker. */
function getOn(session: ClientHttp2Session): Promise<{ status: number; body: string; worker?: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": "/" });
    let status = 0;
    let worker: string | undefined;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      worker = headers["x-polybind-worker"] as string | undefined;
    });
    stream.on("data", (c: string) => (body += c));
    stream.on("end", () => resolve({ status, body, ...(worker ? { worker } : {}) }));
    stream.on("error", reject);
    stream.end();
  });
}

/**
 * An HTTP/2 client as browsers are: one session, a new one once the server said GOAWAY (how an
 * HTTP/2 server drains) or the session ended; no request is retried.
 */
function http2Client(port: number, ca: string[]): { get(): ReturnType<typeof getOn>; close(): void } {
  let session: ClientHttp2Session | undefined;
  return {
    get() {
      if (!session || session.closed || session.destroyed) {
        const current = session = http2Connect(`https://127.0.0.1:${port}`, { ca });
        current.on("error", () => {});
        current.on("goaway", () => current === session && (session = undefined));
      }
      return getOn(session);
    },
    close: () => session?.close(),
  };
}

/** One GET over HTTP/2 on a session of its own: status and body. */
async function getHttp2(port: number, ca: string[]): Promise<{ status: number; body: string }> {
  const client = http2Client(port, ca);
  try {
    const { status, body } = await client.get();
    return { status, body };
  } finally {
    client.close();
  }
}

function portOf(server: Supervisor): number {
  const addr = server.addrs[0];
  assert.ok(addr?.transport === "tcp", JSON.stringify(server.addrs));
  return addr.port;
}

/** supervise() on 127.0.0.1 port 0 with the fixture app, TLS from `tls`. */
function serveApp(tls: { cert: string; key: string }, handover: Handover | "auto" = "auto"): Promise<Supervisor> {
  return supervise({
    app: APP,
    listen: { host: "127.0.0.1", port: 0 },
    workers: 2,
    workerHeader: true,
    tls,
    handover,
    graceMs: 5_000,
    signals: false,
  });
}

/** Whether openssl can be run here. */
function hasOpenssl(): Promise<boolean> {
  return new Promise((resolve) => execFile("openssl", ["version"], { timeout: 10_000 }, (err) => resolve(!err)));
}

const noOpenssl = !(await hasOpenssl());

describe(
  "HTTPS: supervise({ tls }) and polybind serve --tls-cert --tls-key",
  { skip: noOpenssl && "no openssl" },
  () => {
    let dir: { path: string; cleanup(): Promise<void> };
    let a: Pair;
    let b: Pair;
    let ca: string[];

    before(async () => {
      dir = await tempDir();
      [a, b] = await Promise.all([makeCertificate(dir.path, "a"), makeCertificate(dir.path, "b")]);
      ca = [a.pem, b.pem];
    });
    after(() => dir?.cleanup());

    /** Files `cert.pem` and `key.pem` in a fresh folder of the temp dir, holding `pair`'s. */
    async function liveFiles(pair: Pair, name: string): Promise<{ cert: string; key: string }> {
      const files = { cert: join(dir.path, `${name}.cert.pem`), key: join(dir.path, `${name}.key.pem`) };
      await copyFile(pair.cert, files.cert);
      await copyFile(pair.key, files.key);
      return files;
    }

    test("checkTls: the option's shape, absolute paths, files that read and match", async () => {
      assert.equal(checkTls(undefined), undefined);
      assert.throws(() => checkTls(42), {
        name: "TypeError",
        message: /'tls' must be an object .*current value is 42/,
      });
      assert.throws(() => checkTls({ cert: 1, key: a.key }), {
        name: "TypeError",
        message: /'tls.cert' must be a file path: current value is 1/,
      });
      assert.throws(() => checkTls({ cert: a.cert, key: "" }), /'tls.key' must be a file path: current value is ""/);
      const relativeCert = relative(process.cwd(), a.cert);
      assert.deepEqual(checkTls({ cert: relativeCert, key: a.key }), { cert: a.cert, key: a.key });
      const missing = join(dir.path, "missing.pem");
      assert.throws(() => checkTls({ cert: a.cert, key: missing }), {
        name: "TypeError",
        message: `Cannot serve HTTPS as 'tls.key' file ${missing} cannot be read: it does not exist (ENOENT)`,
      });
      const text = join(dir.path, "text.pem");
      await writeFile(text, "not a certificate\n");
      assert.throws(() => checkTls({ cert: text, key: a.key }), /'tls.cert' file .*text\.pem holds no PEM certificate/);
      assert.throws(() => checkTls({ cert: a.cert, key: text }), /'tls.key' file .*text\.pem holds no PEM private key/);
      assert.throws(
        () => checkTls({ cert: a.cert, key: b.key }),
        /'tls.key' file .*b\.key is not the key of the certificate in 'tls.cert' file .*a\.crt/,
      );
    });

    test("the command's --tls-cert and --tls-key: both or neither", () => {
      assert.throws(() => parseCommand(["serve", "--tls-cert", "c.pem"]), /--tls-cert needs --tls-key/);
      assert.throws(() => parseCommand(["serve", "--tls-key", "k.pem"]), /--tls-key needs --tls-cert/);
      const parsed = parseCommand(["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"]);
      assert.deepEqual(parsed.name === "serve" && parsed.tls, { cert: "c.pem", key: "k.pem" });
    });

    for (const handover of ["auto", "beside"] as const) {
      test(`2 workers answer HTTPS with the certificate given (handover ${handover})`, T, async (t) => {
        let server: Supervisor;
        try {
          server = await serveApp({ cert: a.cert, key: a.key }, handover);
        } catch (err) {
          if (handover === "beside" && err instanceof RangeError) return t.skip(err.message);
          throw err;
        }
        try {
          const port = portOf(server);
          const workers = new Set<string>();
          for (let i = 0; i < 200 && workers.size < 2; i++) {
            const r = await get(port, ca);
            assert.equal(r.status, 200);
            assert.equal(r.body, "ok\n");
            workers.add(r.worker!);
          }
          assert.deepEqual([...workers].sort(), ["1.0", "1.1"]);
          const shown = await handshake(port);
          assert.equal(shown.fingerprint, a.fingerprint);
          // Bun.serve answers no ALPN (false): HTTP/1.1 all the same.
          assert.ok(["http/1.1", false].includes((await handshake(port, ["http/1.1"])).alpn));
          // A lent socket (shared, or one each) is served by node:http2 on Node.js, which offers h2, and
          // adopted by the runtime's own server on Deno and Bun (Linux): Deno.serve offers h2 too, Bun.serve
          // no ALPN at all.
          const plan = server.plans[0]!;
          console.log(`ALPN [h2, http/1.1] -> ${shown.alpn} (${plan.strategy}, handover ${handover})`);
          if (plan.strategy === "shared" || plan.lent) assert.equal(shown.alpn, runtime === "bun" ? false : "h2");
          if (shown.alpn === "h2") assert.deepEqual(await getHttp2(port, ca), { status: 200, body: "ok\n" });
        } finally {
          assert.equal((await within(server.stop(), "the stop", 20_000)).code, 0);
        }
      });
    }

    test(
      "rotation: files replaced, reload(), new handshakes get the new certificate, 0 failed requests",
      T,
      async () => {
        const files = await liveFiles(a, "rotate");
        const server = await serveApp(files);
        const port = portOf(server);
        const counts = { ok: 0, failed: [] as string[], generations: new Set<string>() };
        let looping = true;
        // 3 clients with a fresh connection per request, 1 on a kept-alive connection; none retries.
        const keepAlive = new Agent({ keepAlive: true, maxSockets: 1, ca });
        // Where the server speaks HTTP/2 (node:http2 on the lent socket, Deno.serve), one more client on it.
        const h2 = (await handshake(port)).alpn === "h2" ? http2Client(port, ca) : undefined;
        const agents = [false as const, false as const, false as const, keepAlive, ...(h2 ? ["h2" as const] : [])];
        const clients = agents.map(async (agent) => {
          while (looping) {
            try {
              const r = agent === "h2" ? await h2!.get() : await get(port, ca, agent);
              if (r.status === 200 && r.body === "ok\n") counts.ok++;
              else counts.failed.push(`status ${r.status} ${JSON.stringify(r.body)}`);
              counts.generations.add(r.worker?.split(".")[0] ?? "?");
            } catch (err) {
              counts.failed.push(String((err as { code?: string }).code ?? err));
            }
          }
        });
        try {
          assert.equal((await handshake(port)).fingerprint, a.fingerprint);
          await copyFile(b.cert, files.cert);
          await copyFile(b.key, files.key);
          const before = counts.ok;
          const result = await within(server.reload(), "the reload", 60_000);
          assert.deepEqual(result, { ok: true, generation: 2 });
          // The old generation accepts until its workers have closed their listeners (they drain
          // once the new one serves): from then on, every handshake presents B.
          let shown = "";
          for (const end = Date.now() + 10_000; shown !== b.fingerprint && Date.now() < end;) {
            shown = (await handshake(port)).fingerprint;
          }
          for (let i = 0; i < 5; i++) {
            assert.equal(
              (await handshake(port)).fingerprint,
              b.fingerprint,
              `handshake ${i}`,
            );
          }
          assert.equal((await get(port, [b.pem])).worker?.split(".")[0], "2");
          assert.ok(counts.ok > before, `requests during the reload: ${counts.ok - before}`);
        } finally {
          looping = false;
          await Promise.all(clients);
          keepAlive.destroy();
          h2?.close();
          await within(server.stop(), "the stop", 20_000);
        }
        console.log(
          `rotation: ${counts.ok} requests answered (HTTP/2 too: ${h2 !== undefined}), ${counts.failed.length} failed`,
        );
        assert.deepEqual([...counts.generations].sort(), ["1", "2"]);
        assert.deepEqual(counts.failed, [], `${counts.ok} answered`);
      },
    );

    test("a key that is no key: supervise() rejects, naming the file", T, async () => {
      const bad = join(dir.path, "bad.key");
      await writeFile(bad, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
      await assert.rejects(serveApp({ cert: a.cert, key: bad }), (err: Error) => {
        assert.match(err.message, /'tls\.key' file \S*bad\.key holds a private key that cannot be read/);
        return true;
      });
    });

    test("a bad file at reload: reload() says why, naming the file; the old certificate serves on", T, async () => {
      const files = await liveFiles(a, "broken");
      const server = await serveApp(files);
      try {
        const port = portOf(server);
        await writeFile(files.key, "not a key\n");
        const result = await within(server.reload(), "the reload", 60_000);
        assert.equal(result.ok, false);
        assert.equal(result.generation, 1);
        assert.match(result.reason ?? "", /'tls\.key' file \S*broken\.key\.pem holds no PEM private key/);
        assert.equal((await handshake(port)).fingerprint, a.fingerprint);
        const r = await get(port, [a.pem]);
        assert.deepEqual([r.status, r.body, r.worker?.split(".")[0]], [200, "ok\n", "1"]);
      } finally {
        await within(server.stop(), "the stop", 20_000);
      }
    });

    test("polybind serve APP --tls-cert --tls-key prints an https:// address that answers", T, async () => {
      const child = run("cli/polybind", [
        ...["serve", projectFile("tests/fixtures/life_app"), "--port", "0", "--workers", "2"],
        ...["--tls-cert", a.cert, "--tls-key", a.key],
      ]);
      try {
        const line = await child.line(/^polybind serve: listening on /, 60_000);
        const url = /(https:\/\/\S+?)(,|\s)/.exec(line)?.[1];
        assert.ok(url, line);
        const r = await get(Number(new URL(url).port), [a.pem]);
        assert.deepEqual([r.status, r.body], [200, "ok\n"]);
      } finally {
        await within(child.stop(), "the command's exit", 20_000);
      }
    });
  },
);
