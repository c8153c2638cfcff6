// Zero-downtime reload (issue 14): `polybind serve` with 2 workers under 32 clients that open a
// fresh connection per request and 8 keep-alive clients that never retry, 10 SIGHUPs one second
// apart, then SIGTERM: 0 failed requests (refused, reset, empty reply, non-200) and an answer from
// every generation; and a reload whose app throws at import: the old generation serves on with 0
// failures, the command says why, a later reload works, SIGTERM exits 0; a new primary on SIGUSR2;
// and certificate rotation over HTTPS: the files replaced, one SIGHUP, new handshakes get the new
// certificate (openssl s_client checks one too), 0 failed requests. Each case runs with
// net.ipv4.tcp_migrate_req 0 and 1, set in a network namespace of its own (`unshare -n`, which
// needs root) so that the host's setting never changes: _reload_driver.ts runs in there, on this
// runtime, with the load client beside it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { capabilities } from "../mod.ts";
import { projectFile } from "../tests/_process.ts";
import { runtimeCommand } from "../tests/_runtime_command.ts";
import type { DriverResult, LoadReport } from "./_reload_driver.ts";
import { figure } from "./_serve.ts";

const GENERATIONS = 11;
const LIMIT_S = 90;
/** Brings loopback up and sets tcp_migrate_req ($0) in the new namespace, then runs the rest. */
const INSIDE = 'ip link set lo up && sysctl -q -w net.ipv4.tcp_migrate_req="$0" && exec "$@"';

/** Why this cannot run here, if so. */
function cannotRun(): string | undefined {
  if (process.platform !== "linux") return "Linux only: network namespaces and net.ipv4.tcp_migrate_req";
  if (process.getuid?.() !== 0) {
    return "needs root: unshare -n makes a network namespace where tcp_migrate_req can be set without touching the host";
  }
  const r = spawnSync("unshare", ["-n", "--", "sh", "-c", INSIDE, "1", "true"], { encoding: "utf8" });
  if (r.status !== 0) {
    return `cannot make a network namespace with tcp_migrate_req set (unshare -n, ip, sysctl; Linux >= 5.14): ${
      (r.stderr || r.error?.message || "").trim()
    }`;
  }
  return undefined;
}

const skip = cannotRun();
if (skip) console.log(`stress/reload.test.ts skipped: ${skip}`);

/** A driver's result where the command served (and the load ran). */
type Served = DriverResult & { load: LoadReport };

/** Runs the driver's `scenario` in a new network namespace with tcp_migrate_req `migrate`. */
function inNamespace(scenario: "reloads" | "broken" | "successor" | "tls", migrate: 0 | 1): Promise<Served> {
  const [command, args] = runtimeCommand(projectFile("stress/_reload_driver"), [scenario]);
  const argv = [
    "-k",
    "5",
    String(LIMIT_S),
    "unshare",
    "-n",
    "--",
    "sh",
    "-c",
    INSIDE,
    String(migrate),
    command,
    ...args,
  ];
  const child = spawn("timeout", argv, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise<DriverResult>((resolve, reject) => {
    child.once("close", (code) => {
      // Whatever the driver left behind in the group of `timeout` (a command that ignored SIGTERM).
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // Nothing left.
      }
      const line = out.split("\n").find((l) => l.startsWith("reload-result "));
      if (line) resolve(JSON.parse(line.slice("reload-result ".length)));
      else reject(new Error(`the driver exited with ${code} and no result: ${out} ${err}`));
    });
  }).then((r) => {
    if (!r.load) throw new Error(`the command did not serve: ${r.stdout.join("\n")}\n${r.stderr}`);
    return r as Served;
  });
}

/** The runtime as the figures name it. */
function runtimeName(): string {
  const caps = capabilities();
  return `${caps.runtime} ${caps.version}${caps.runtime === "deno" && caps.udp ? " --unstable-net" : ""}`;
}

/** Failures grouped by the SIGHUP before them: "8 empty reply (kept) 184-186 ms after SIGHUP 10". */
function whenFailed(r: Served): string[] {
  const groups = new Map<string, number[]>();
  for (const e of r.load?.events ?? []) {
    const i = r.sighups.findLastIndex((t) => t <= e.at);
    const key = `${e.kind} (${e.client}) ${i < 0 ? "before any SIGHUP" : `after SIGHUP ${i + 1}`}`;
    groups.set(key, [...(groups.get(key) ?? []), i < 0 ? 0 : e.at - r.sighups[i]!]);
  }
  return [...groups].map(([key, at]) => `${at.length} ${key} at +${Math.min(...at)}..${Math.max(...at)} ms`);
}

function failedCount(load: LoadReport): number {
  return load.failed.fresh + load.failed.kept;
}

/** The figure line and a row for BENCHMARKS.md. */
function report(r: Served, what: string): void {
  const load = r.load;
  const served = load.ok.fresh + load.ok.kept;
  const times = r.reloads.filter((x) => x.outcome === "serves").map((x) => x.ms).sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : NaN;
  const strategy = /^strategy: (\S+?(?:, lent)?) \(/.exec(r.strategy)?.[1] ?? "?";
  const kinds = JSON.stringify(load.kinds);
  const gens = Object.keys(load.generations).sort((a, b) => Number(a) - Number(b)).join(",");
  figure(
    `reload, ${what}, tcp_migrate_req ${r.migrateReq} (${strategy}): ${served} requests ` +
      `(fresh ${load.ok.fresh}, keep-alive ${load.ok.kept} on ${load.keptConnections} connections), ` +
      `${failedCount(load)} failed ${kinds}, generations answering ${gens}, ` +
      `SIGHUP to serving median ${median} ms, max ${times.at(-1) ?? NaN} ms`,
  );
  console.log(
    `[row] | ${runtimeName()} | ${what} | ${r.migrateReq} | ${strategy} | ${served} | ` +
      `${load.failed.fresh} / ${load.failed.kept} ${failedCount(load) ? kinds : ""} | ${gens} | ${
        times.length ? `${median} / ${times.at(-1)} ms` : "-"
      } |`,
  );
}

/** The figure of the `tls` scenario; `servesAt`: when the line said generation 2 serves. */
function reportRotation(r: Served, servesAt: number): void {
  const { load, tls } = r;
  const certs = load.certificates ?? {};
  const name = (fp: string) => fp === tls!.a ? "A" : fp === tls!.b ? "B" : fp;
  const seen = Object.entries(certs).map(([fp, c]) => `${name(fp)} ${c.fresh} fresh + ${c.kept} kept`);
  const since = (at: number | undefined, from: number) => at === undefined ? "-" : `${at - from} ms`;
  const strategy = /^strategy: (\S+?(?:, lent)?) \(/.exec(r.strategy)?.[1] ?? "?";
  const handover = r.stdout.map((l) => /^reload: (\S+)/.exec(l)?.[1]).find(Boolean) ?? "?";
  const lastA = since(certs[tls!.a]?.freshSeen?.[1], servesAt);
  const firstB = since(certs[tls!.b]?.freshSeen?.[0], r.sighups[0]!);
  figure(
    `certificate rotation, tcp_migrate_req ${r.migrateReq} (${strategy}, reload by ${handover}): ` +
      `${load.ok.fresh + load.ok.kept} requests (fresh ${load.ok.fresh}, keep-alive ${load.ok.kept} on ` +
      `${load.keptConnections} connections), ${failedCount(load)} failed ${JSON.stringify(load.kinds)}; ` +
      `certificates ${seen.join(", ")}; last new connection with A ${lastA} after the serving line, ` +
      `first with B ${firstB} after SIGHUP; openssl s_client got ${name(tls!.external)}; ` +
      `SIGHUP to serving ${r.reloads[0]?.ms} ms`,
  );
}

for (const migrate of [0, 1] as const) {
  test(
    `10 reloads under load with 0 failed requests (tcp_migrate_req ${migrate})`,
    { timeout: (LIMIT_S + 30) * 1000, skip: skip ?? false },
    async () => {
      const r = await inNamespace("reloads", migrate);
      assert.equal(r.migrateReq, String(migrate));
      const stalled = r.reloads.find((x) => x.outcome !== "serves");
      assert.equal(stalled, undefined, `a reload did not serve: ${JSON.stringify(r.reloads)}\n${r.stderr}`);
      report(r, `${GENERATIONS - 1} reloads`);
      const failures = whenFailed(r);
      assert.equal(failedCount(r.load), 0, `${JSON.stringify(r.load.kinds)}: ${failures.join("; ")}`);
      const missing = Array.from({ length: GENERATIONS }, (_, i) => String(i + 1)).filter((g) =>
        !r.load.generations[g]
      );
      assert.deepEqual(missing, [], `generations that never answered: ${JSON.stringify(r.load.generations)}`);
      assert.equal(r.code, 0, r.stderr);
    },
  );

  test(
    `a reload whose app throws at import: the old generation serves on (tcp_migrate_req ${migrate})`,
    { timeout: (LIMIT_S + 30) * 1000, skip: skip ?? false },
    async () => {
      const r = await inNamespace("broken", migrate);
      assert.equal(r.migrateReq, String(migrate));
      report(r, "failed reload, then one more");
      assert.equal(r.reloads[0]?.outcome, "failed", JSON.stringify(r.reloads));
      assert.match(
        r.stderr,
        /^polybind serve: reload failed: worker \d failed: .*broken at import: .*; generation 1 serves on$/m,
      );
      assert.equal(r.reloads[1]?.outcome, "serves", `the reload after the failed one: ${JSON.stringify(r.reloads)}`);
      // Until the second SIGHUP only generation 1 answers, and nothing fails.
      const second = r.sighups[1]!;
      const early = r.load.events.filter((e) => e.at < second);
      assert.ok(failedCount(r.load) <= r.load.events.length, "more failures than the client lists");
      assert.deepEqual(early, [], `failed while the new generation failed: ${whenFailed(r).join("; ")}`);
      assert.ok(
        (r.load.seen["1"]?.[1] ?? 0) > r.sighups[0]! + 1_000,
        `generation 1 served on: ${JSON.stringify(r.load.seen)}`,
      );
      // Generation 2 failed and never answered; 3, the one after it, answers once it serves.
      assert.equal(r.load.seen["2"], undefined, `the failed generation answered: ${JSON.stringify(r.load.seen)}`);
      assert.ok(
        (r.load.seen["3"]?.[0] ?? 0) >= second,
        `the generation after the failed one: ${JSON.stringify(r.load.seen)}`,
      );
      // The reload after it, as in the test above.
      assert.equal(failedCount(r.load), 0, `${JSON.stringify(r.load.kinds)}: ${whenFailed(r).join("; ")}`);
      assert.equal(r.code, 0, r.stderr);
    },
  );

  test(
    `SIGUSR2 under load: a new primary takes the sockets over with 0 failed requests (tcp_migrate_req ${migrate})`,
    { timeout: (LIMIT_S + 30) * 1000, skip: skip ?? false },
    async () => {
      const r = await inNamespace("successor", migrate);
      assert.equal(r.migrateReq, String(migrate));
      const s = r.successor;
      assert.ok(s, `no new primary: ${r.stdout.join("\n")}\n${r.stderr}`);
      const served = r.load.ok.fresh + r.load.ok.kept;
      const kinds = Object.values(s.fds).map((l) => l.replace(/\[\d+\]$/, "").replace(/^\/.*/, "file"));
      const count = (k: string) => kinds.filter((x) => x === k).length;
      figure(
        `new primary (SIGUSR2), tcp_migrate_req ${r.migrateReq}: ${served} requests, ` +
          `${failedCount(r.load)} failed ${JSON.stringify(r.load.kinds)}, old primary gone ${s.ms} ms after SIGUSR2; ` +
          `its descriptors: ${Object.keys(s.fds).length} (sockets ${count("socket:")}, of them TCP ${
            JSON.stringify(s.tcp)
          }; pipes ${count("pipe:")}; files ${count("file")}; others ${count("anon_inode:")})`,
      );
      assert.equal(failedCount(r.load), 0, `${JSON.stringify(r.load.kinds)}: ${whenFailed(r).join("; ")}`);
      assert.equal(s.oldExit, 0, `the old primary's exit: ${r.stderr}`);
      // Its TCP sockets are the server's: on its one port, listening or bound (lent), and where its
      // workers are threads of it, their clients' connections; nothing of the old primary's.
      const port = s.tcp[0]?.port;
      const states = r.stdout.some((l) => l.includes("worker(s) (threads)")) ? ["0A", "07", "01"] : ["0A", "07"];
      assert.ok(s.tcp.length > 0 || /reuseport/.test(r.strategy), `no listener held: ${JSON.stringify(s)}`);
      for (const t of s.tcp) assert.ok(t.port === port && states.includes(t.state), JSON.stringify(s.tcp));
      // Standard streams, its listeners, its 2 workers' stdin, stdout and IPC channel (socket pairs on
      // Node.js), what the runtime opens: no more (each socket once, however many descriptors hold it).
      const sockets = new Set(
        Object.entries(s.fds).filter(([fd, l]) => Number(fd) > 2 && l.startsWith("socket:")).map(([, l]) => l),
      );
      assert.ok(sockets.size <= s.tcp.length + 3 * 2, `sockets: ${JSON.stringify(s.fds)}`);
      assert.ok(["0", "1", "2"].every((fd) => fd in s.fds), JSON.stringify(s.fds));
      assert.equal(r.code, 0, r.stderr);
    },
  );

  test(
    `certificate rotation under load: new handshakes get the new certificate (tcp_migrate_req ${migrate})`,
    { timeout: (LIMIT_S + 30) * 1000, skip: skip ?? false },
    async () => {
      const r = await inNamespace("tls", migrate);
      assert.equal(r.migrateReq, String(migrate));
      const { tls, load } = r;
      assert.ok(tls, `no certificates: ${r.stdout.join("\n")}\n${r.stderr}`);
      const reloaded = r.reloads[0];
      assert.equal(reloaded?.outcome, "serves", `the reload: ${JSON.stringify(r.reloads)}\n${r.stderr}`);
      const sighup = r.sighups[0]!;
      const servesAt = sighup + reloaded.ms;
      const certs = load.certificates ?? {};
      const a = certs[tls.a];
      const b = certs[tls.b];
      reportRotation(r, servesAt);
      assert.equal(failedCount(load), 0, `${JSON.stringify(load.kinds)}: ${whenFailed(r).join("; ")}`);
      assert.ok(a && b, `both certificates seen: ${JSON.stringify(certs)} (A ${tls.a}, B ${tls.b})`);
      assert.deepEqual(
        Object.keys(certs).sort(),
        [tls.a, tls.b].sort(),
        `a third certificate: ${JSON.stringify(certs)}`,
      );
      assert.ok(a.freshSeen, `A was never shown to a new connection: ${JSON.stringify(a)}`);
      assert.ok(
        a.freshSeen[1] < servesAt + tls.settleMs,
        `A shown to a new connection ${a.freshSeen[1] - servesAt} ms after the serving line: ${JSON.stringify(a)}`,
      );
      assert.ok(b.freshSeen && b.freshSeen[0] >= sighup, `B before the SIGHUP or never: ${JSON.stringify(b)}`);
      assert.equal(
        tls.external,
        tls.b,
        `openssl s_client at +${tls.checkedAt - servesAt} ms got ${tls.external}, not B`,
      );
      assert.equal(r.code, 0, r.stderr);
    },
  );
}
