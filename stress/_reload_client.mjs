// The load of stress/reload.test.ts, in its own Node.js process: `fresh` clients that each open a
// new connection per request, and `kept` clients that each keep one connection alive (a node:http
// Agent with keepAlive and one socket) and never retry. GETs / until a line arrives on stdin (or
// stdin closes), then waits for what is in flight and prints one JSON line: requests answered
// 200 per client kind and per generation (from x-polybind-worker, with the first and last time
// each generation answered), failures by kind (refused,
// reset, empty reply, status N, timeout) and the first 200 failures with their time (epoch ms).
// With `https`: the same over TLS (any certificate accepted), and per certificate the server
// presented (its SHA-256 fingerprint) the answers over it per client kind, with the first and last
// time a fresh connection's handshake got it and the first and last time a kept-alive one answered.
// Usage: node stress/_reload_client.mjs <port> [fresh=32] [kept=8] [host=127.0.0.1] [http|https]

import * as http from "node:http";
import * as https from "node:https";
import process from "node:process";

const port = Number(process.argv[2]);
const fresh = Number(process.argv[3] ?? 32);
const kept = Number(process.argv[4] ?? 8);
const host = process.argv[5] ?? "127.0.0.1";
const secure = process.argv[6] === "https";
const { Agent, request } = secure ? https : http;
const tlsOptions = secure ? { rejectUnauthorized: false } : {};
const TIMEOUT_MS = 15_000;

const result = {
  ok: { fresh: 0, kept: 0 },
  failed: { fresh: 0, kept: 0 },
  kinds: {},
  generations: {},
  seen: {},
  keptConnections: 0,
  /** With https: fingerprint → { fresh, kept, freshSeen: [first, last] handshake, keptSeen: [first, last] answer }. */
  certificates: {},
  events: [],
  ms: 0,
};
let stopping = false;

/** A failure's kind, as the issue names them: refused, reset, empty reply, or the code. */
function kindOf(err) {
  if (err.code === "ECONNREFUSED") return "refused";
  if (err.message === "socket hang up") return "empty reply";
  if (err.code === "ECONNRESET" || err.code === "EPIPE") return "reset";
  return err.code ?? err.message;
}

/** One GET; resolves with the generation that answered (and the certificate, when and how it was shown), or a failure's kind. */
function get(agent) {
  return new Promise((resolve) => {
    let handshakeAt;
    let certificate;
    let settled = false;
    const done = (value) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }
    };
    const req = request({ host, port, path: "/", agent, ...tlsOptions }, (res) => {
      // Read while the connection is open: a fresh one may be closed by the end of the body.
      if (secure) certificate = res.socket.getPeerCertificate().fingerprint256 ?? "none";
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("error", (err) => done({ kind: kindOf(err) }));
      res.on("end", () => {
        const worker = String(res.headers["x-polybind-worker"] ?? "");
        if (res.statusCode !== 200) done({ kind: `status ${res.statusCode}` });
        else if (body !== "ok\n") done({ kind: "wrong body" });
        else done({ generation: worker.split(".")[0] || "none", certificate, handshakeAt });
      });
    });
    if (secure) {
      req.on("socket", (socket) => socket.once("secureConnect", () => (handshakeAt = Date.now())));
    }
    const timer = setTimeout(() => {
      done({ kind: "timeout" });
      req.destroy();
    }, TIMEOUT_MS);
    req.on("error", (err) => done({ kind: kindOf(err) }));
    req.end();
  });
}

async function client(kind) {
  const agent = kind === "kept" ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
  if (agent) agent.createConnection = countConnections(agent.createConnection);
  while (!stopping) {
    const r = await get(agent);
    if (r.generation !== undefined) {
      result.ok[kind]++;
      result.generations[r.generation] = (result.generations[r.generation] ?? 0) + 1;
      const now = Date.now();
      result.seen[r.generation] = [result.seen[r.generation]?.[0] ?? now, now];
      if (r.certificate !== undefined) countCertificate(r.certificate, kind, r.handshakeAt ?? now, now);
    } else {
      result.failed[kind]++;
      result.kinds[r.kind] = (result.kinds[r.kind] ?? 0) + 1;
      if (result.events.length < 200) result.events.push({ at: Date.now(), client: kind, kind: r.kind });
    }
  }
  if (agent) agent.destroy();
}

/** Counts an answer over `fingerprint`: a fresh connection's by its handshake, a kept-alive one's by its answer. */
function countCertificate(fingerprint, kind, handshakeAt, now) {
  const c = (result.certificates[fingerprint] ??= { fresh: 0, kept: 0, freshSeen: null, keptSeen: null });
  c[kind]++;
  const at = kind === "fresh" ? handshakeAt : now;
  const seen = `${kind}Seen`;
  c[seen] = [Math.min(c[seen]?.[0] ?? at, at), Math.max(c[seen]?.[1] ?? at, at)];
}

/** Wraps an Agent's createConnection so that each new kept-alive connection is counted. */
function countConnections(create) {
  return function (...args) {
    result.keptConnections++;
    return create.apply(this, args);
  };
}

process.stdin.on("data", () => (stopping = true));
process.stdin.on("end", () => (stopping = true));
const started = Date.now();
process.stdout.write(JSON.stringify({ started }) + "\n");
await Promise.all([
  ...Array.from({ length: fresh }, () => client("fresh")),
  ...Array.from({ length: kept }, () => client("kept")),
]);
result.ms = Date.now() - started;
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
