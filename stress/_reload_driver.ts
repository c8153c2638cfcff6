// What stress/reload.test.ts runs inside its own network namespace (`unshare -n`, loopback up,
// net.ipv4.tcp_migrate_req set there), on the runtime under test: `polybind serve` with 2 workers
// and the worker header on 127.0.0.1 port 0, the load of _reload_client.mjs, then the reloads of
// one scenario, then SIGTERM. Prints one line `reload-result <JSON>` for the test to check.
// `successor`: SIGUSR2 instead: a new primary takes the sockets over, the old one exits; what the
// new primary holds (its /proc/PID/fd, the TCP sockets among them) is in the result.
// `tls`: HTTPS with certificate A (made by openssl here), its files replaced by B's (written
// beside, renamed over), one SIGHUP; an external client (openssl s_client) checks which
// certificate a new handshake gets once the new generation serves.
// Usage: <runtime> stress/_reload_driver.ts reloads|broken|successor|tls

import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { signal } from "../tests/_cli.ts";
import { type Child, projectFile, run } from "../tests/_process.ts";

/** How many reloads the `reloads` scenario sends, one second apart at least. */
const RELOADS = 10;
/** How long after the `tls` reload's line new handshakes may still get the old certificate. */
const TLS_SETTLE_MS = 500;

/** One reload as measured here: SIGHUP to the line saying the generation serves (or failed). */
export interface ReloadTiming {
  generation: number;
  /** From SIGHUP to the line, measured by the driver. */
  ms: number;
  /** What the command said it took. */
  reported?: number;
  outcome: "serves" | "failed" | "no line";
}

/** What the load client reports (see _reload_client.mjs). */
export interface LoadReport {
  ok: { fresh: number; kept: number };
  failed: { fresh: number; kept: number };
  kinds: Record<string, number>;
  generations: Record<string, number>;
  /** When each generation answered first and last (epoch ms). */
  seen: Record<string, [number, number]>;
  keptConnections: number;
  /** Over HTTPS: per certificate (SHA-256 fingerprint), answers per client kind and when (epoch ms). */
  certificates?: Record<string, CertificateSeen>;
  events: { at: number; client: string; kind: string }[];
  ms: number;
}

/** Answers over one certificate: a fresh connection's seen at its handshake, a kept-alive one's at its answer. */
export interface CertificateSeen {
  fresh: number;
  kept: number;
  freshSeen: [number, number] | null;
  keptSeen: [number, number] | null;
}

/** What the driver prints for the test. */
export interface DriverResult {
  scenario: string;
  migrateReq: string;
  strategy: string;
  reloads: ReloadTiming[];
  sighups: number[];
  /** Missing when the command did not start. */
  load?: LoadReport;
  code: number | null;
  stdout: string[];
  stderr: string;
  /** The `successor` scenario: the new primary, what it holds, how the old one ended. */
  successor?: {
    pid: number;
    /** Its descriptors: number → what /proc says (socket:[inode], pipe:[...], a path). */
    fds: Record<string, string>;
    /** Its TCP sockets as /proc/net/tcp{,6} lists them: local port and state (0A: listening, 07: bound). */
    tcp: { port: number; state: string }[];
    oldExit: number | null;
    /** From SIGUSR2 to the old primary's exit. */
    ms: number;
  };
  /** The `tls` scenario: the two fingerprints, what openssl s_client got (at `checkedAt`), the settle it allows. */
  tls?: { a: string; b: string; external: string; checkedAt: number; settleMs: number };
}

/** What process `pid` holds: each descriptor and what it is. */
function descriptorsOf(pid: number): Record<string, string> {
  const fds: Record<string, string> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds[fd] = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      // Closed meanwhile.
    }
  }
  return fds;
}

/** The TCP sockets among `fds`, by inode in /proc/net/tcp and tcp6: their local port and state. */
function tcpSockets(fds: Record<string, string>): { port: number; state: string }[] {
  const inodes = new Set(Object.values(fds).map((l) => /^socket:\[(\d+)\]$/.exec(l)?.[1]).filter(Boolean));
  const found: { port: number; state: string }[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const row of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9])) found.push({ port: parseInt(f[1]!.split(":")[1]!, 16), state: f[3]! });
    }
  }
  return found;
}

function root(): string {
  const here = fileURLToPath(import.meta.url);
  const build = here.indexOf("/.build/");
  return build >= 0 ? here.slice(0, build) : dirname(dirname(here));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `pattern` matches a line of the command's stdout or stderr after line `from`. */
async function lineAfter(child: Child, from: number, pattern: RegExp, timeoutMs: number): Promise<string | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const found = child.stdout.slice(from).find((l) => pattern.test(l)) ??
      child.stderr.join("").split("\n").find((l) => pattern.test(l));
    if (found !== undefined) return found;
    await sleep(5);
  }
  return undefined;
}

/** Starts the load client on `port`; `stop()` ends it and resolves with its report. */
function startLoad(port: number, scheme: "http" | "https"): { stop(): Promise<LoadReport> } {
  const client = join(root(), "stress", "_reload_client.mjs");
  const child = spawn("node", [client, String(port), "32", "8", "127.0.0.1", scheme], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  return {
    async stop() {
      child.stdin!.end("stop\n");
      await exited;
      const last = lines.at(-1);
      if (!last || !last.startsWith('{"ok"')) throw new Error(`load client said: ${lines.join("\n")}`);
      return JSON.parse(last) as LoadReport;
    },
  };
}

/** Sends SIGHUP and waits for the line saying how the reload to `generation` ended. */
async function reload(child: Child, generation: number, sighups: number[]): Promise<ReloadTiming> {
  const from = child.stdout.length;
  const stderrFrom = child.stderr.join("").length;
  const sent = Date.now();
  sighups.push(sent);
  signal(child.process.pid!, "SIGHUP"); // not child.process.kill: on Deno only its first signal is sent
  const served = new RegExp(`^polybind serve: generation ${generation} serves \\((\\d+) ms\\)`);
  const until = sent + 35_000; // reloadTimeoutMs is 30 s: a late generation is said to fail by then
  while (Date.now() < until) {
    const line = child.stdout.slice(from).find((l) => served.test(l));
    if (line) return { generation, ms: Date.now() - sent, reported: Number(served.exec(line)![1]), outcome: "serves" };
    if (/reload failed: /.test(child.stderr.join("").slice(stderrFrom))) {
      return { generation, ms: Date.now() - sent, outcome: "failed" };
    }
    await sleep(5);
  }
  return { generation, ms: Date.now() - sent, outcome: "no line" };
}

/** Runs `command` with `input` on its stdin (none: /dev/null); resolves with its stdout, rejects on failure. */
function output(command: string, args: string[], input?: string): Promise<string> {
  const child = spawn(command, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  if (input !== undefined) child.stdin!.end(input);
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return new Promise((resolve, reject) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}: ${err}`));
    })
  );
}

/** The SHA-256 fingerprint of the first certificate in `pem`, written as getPeerCertificate() does. */
async function fingerprintOf(pem: string): Promise<string> {
  const said = await output("openssl", ["x509", "-noout", "-fingerprint", "-sha256"], pem);
  return said.trim().replace(/^.*=/, "").toUpperCase();
}

/** Makes self-signed certificates A and B for 127.0.0.1 in `dir`; A's files are copied to the ones served. */
async function makeCertificates(dir: string): Promise<{ cert: string; key: string; a: string; b: string }> {
  const [a, b] = await Promise.all(["a", "b"].map(async (name) => {
    const args = [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
      ...[
        "-keyout",
        join(dir, `${name}.key`),
        "-out",
        join(dir, `${name}.crt`),
        "-subj",
        `/CN=polybind stress ${name}`,
      ],
      ...["-addext", "subjectAltName=IP:127.0.0.1"],
    ];
    await output("openssl", args);
    return await fingerprintOf(readFileSync(join(dir, `${name}.crt`), "utf8"));
  }));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  copyFileSync(join(dir, "a.crt"), cert);
  copyFileSync(join(dir, "a.key"), key);
  return { cert, key, a: a!, b: b! };
}

/** Replaces the served files with B's as a certificate tool does: written beside, renamed over. */
function rotate(dir: string, files: { cert: string; key: string }): void {
  for (const [from, to] of [["b.key", files.key], ["b.crt", files.cert]] as const) {
    writeFileSync(`${to}.new`, readFileSync(join(dir, from)));
    renameSync(`${to}.new`, to);
  }
}

/** Runs `scenario` and prints its result, whatever happened. */
async function main(scenario: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "polybind-reload-"));
  const marker = join(dir, "broken");
  const certificates = scenario === "tls" ? await makeCertificates(dir) : undefined;
  const child = run(
    "cli/polybind",
    [
      ...["serve", projectFile("stress/_reload_app"), "--port", "0", "--workers", "2", "--worker-header"],
      ...(certificates ? ["--tls-cert", certificates.cert, "--tls-key", certificates.key] : []),
    ],
    { POLYBIND_RELOAD_MARKER: marker },
  );
  const reloads: ReloadTiming[] = [];
  const sighups: number[] = [];
  let load: LoadReport | undefined;
  let strategy = "";
  let successor: DriverResult["successor"];
  let tls: DriverResult["tls"];
  // Its exit, not the end of its output: a new primary writes on the same pipes.
  const oldExit = new Promise<number | null>((resolve) => child.process.once("exit", (code) => resolve(code)));
  try {
    const line = await child.line(/^polybind serve: listening on /, 60_000);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(line)![1]);
    strategy = (await lineAfter(child, 0, /^strategy: /, 10_000)) ?? "";
    const client = startLoad(port, certificates ? "https" : "http");
    try {
      await sleep(1_000);
      if (scenario === "successor") {
        const from = child.stdout.length;
        const sent = Date.now();
        sighups.push(sent);
        signal(child.process.pid!, "SIGUSR2");
        const said = await lineAfter(child, from, /new primary started \(pid \d+\)/, 35_000);
        const pid = said ? Number(/pid (\d+)/.exec(said)![1]) : 0;
        const code = await Promise.race([oldExit, sleep(20_000).then(() => -1)]);
        const ms = Date.now() - sent;
        if (pid) {
          // The new primary as it serves alone: what it holds.
          await sleep(500);
          const fds = descriptorsOf(pid);
          successor = { pid, fds, tcp: tcpSockets(fds), oldExit: code, ms };
        }
      } else if (scenario === "reloads") {
        for (let g = 2; g <= RELOADS + 1; g++) {
          const r = await reload(child, g, sighups);
          reloads.push(r);
          if (r.outcome !== "serves") break;
          await sleep(Math.max(0, sighups.at(-1)! + 1_000 - Date.now()));
        }
      } else if (certificates) {
        rotate(dir, certificates);
        const r = await reload(child, 2, sighups);
        reloads.push(r);
        // A new handshake by a real TLS client, once the new generation has had time to take over.
        await sleep(Math.max(0, sighups[0]! + r.ms + TLS_SETTLE_MS - Date.now()));
        const checkedAt = Date.now();
        const external = await output("openssl", ["s_client", "-connect", `127.0.0.1:${port}`])
          .then(fingerprintOf).catch((err: Error) => `none (${err.message.trim()})`);
        tls = { a: certificates.a, b: certificates.b, external, checkedAt, settleMs: TLS_SETTLE_MS };
      } else {
        writeFileSync(marker, "");
        reloads.push(await reload(child, 2, sighups));
        await sleep(1_500);
        rmSync(marker);
        // Generation 2 failed (its number is never used again): the next one is 3.
        reloads.push(await reload(child, 3, sighups));
      }
      // The last generation takes the load alone while the one before it drains.
      await sleep(1_500);
    } finally {
      load = await client.stop();
    }
  } finally {
    let code: number | null | "late";
    if (successor) {
      // The old primary is gone; the new one, its stop, and its end (it is not our child).
      signal(successor.pid, "SIGTERM");
      const until = Date.now() + 20_000;
      while (Date.now() < until && existsSync(`/proc/${successor.pid}`)) await sleep(20);
      code = existsSync(`/proc/${successor.pid}`) ? "late" : successor.oldExit;
      if (code === "late") signal(successor.pid, "SIGKILL");
    } else {
      code = await Promise.race([child.stop("SIGTERM"), sleep(20_000).then(() => "late" as const)]);
      if (code === "late") signal(child.process.pid!, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
    const result: DriverResult = {
      scenario,
      migrateReq: readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim(),
      strategy,
      reloads,
      sighups,
      load,
      code: code === "late" ? -1 : code,
      stdout: child.stdout,
      stderr: child.stderr.join(""),
      ...(successor ? { successor } : {}),
      ...(tls ? { tls } : {}),
    };
    console.log(`reload-result ${JSON.stringify(result)}`);
  }
}

await main(process.argv[2] ?? "reloads");
process.exit(0);
