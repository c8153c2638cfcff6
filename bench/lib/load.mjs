// The load generators: wrk for HTTP (installed with apt-get when missing), and the small
// Node.js clients in bench/clients/ for UDP echoes and fresh connections. Each run is bounded
// in time and resolves with one number plus what went wrong, if anything.

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { runToEnd } from "./proc.mjs";
import { ROOT } from "./runtimes.mjs";

function hasWrk() {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
    return true;
  } catch (err) {
    // wrk --version exits with 1 after printing its version.
    return err.code !== "ENOENT";
  }
}

/** Installs wrk with apt-get if it is not on PATH. */
export function ensureWrk() {
  if (hasWrk()) return;
  process.stderr.write("wrk is missing: installing it with apt-get\n");
  const apt = (args) => execFileSync("apt-get", args, { stdio: "inherit", timeout: 300_000 });
  apt(["update", "-qq"]);
  apt(["install", "-y", "-qq", "wrk"]);
  if (!hasWrk()) throw new Error("wrk is still missing after apt-get install wrk");
}

/** Parses wrk's "Requests/sec" and error lines. */
function parseWrk(out) {
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const ops = Number(/(\d+) requests in/.exec(out)?.[1]);
  if (!Number.isFinite(rate)) throw new Error(`Cannot read wrk's output:\n${out}`);
  const errors = [];
  const socket = /Socket errors: (.*)/.exec(out)?.[1];
  if (socket) errors.push(`socket errors: ${socket}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
  if (non2xx) errors.push(`${non2xx} non-2xx`);
  return { value: rate, ops, errors };
}

/**
 * Drives http://127.0.0.1:port/ with wrk for `seconds` (one thread, `connections`
 * connections), with "Connection: close" when `close` is set, and a Lua `script` given
 * `scriptArgs` when one is set.
 */
export async function wrk(port, { seconds, connections = 32, close = false, cpu, script, scriptArgs = [] }) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "2s"];
  if (close) args.push("-H", "Connection: close");
  if (script !== undefined) args.push("-s", script);
  args.push(`http://127.0.0.1:${port}/`);
  if (scriptArgs.length > 0) args.push("--", ...scriptArgs);
  const run = () => runToEnd("wrk", args, { cpu, timeoutMs: seconds * 1000 + 15_000 });
  const out = await run();
  // Now and then (a few times in a hundred runs with a Lua script, two at once) wrk exits 0
  // having printed nothing at all: once more, and said.
  if (out.trim() !== "") return parseWrk(out);
  process.stderr.write(`wrk printed nothing (port ${port}): running it again\n`);
  return parseWrk(await run());
}

function client(name, options, cpu, timeoutMs) {
  return runToEnd(process.execPath, [join(ROOT, "bench", "clients", name), JSON.stringify(options)], {
    cpu,
    timeoutMs,
  }).then((out) => JSON.parse(out));
}

/** Echoed datagrams per second from the UDP echo server on `port`. */
export async function udp(port, { seconds, cpu }) {
  const durationMs = seconds * 1000;
  const r = await client("udp.mjs", { port, durationMs, warmupMs: 300 }, cpu, durationMs + 20_000);
  return { value: r.rate, ops: r.received, errors: r.refills > 0 ? [`window refilled ${r.refills} times`] : [] };
}

/** Kept-alive requests per second from `connections` clients that send `header` ("v2" or none) first. */
export async function keepAlive(port, { seconds, header, cpu }) {
  const durationMs = seconds * 1000;
  const options = { port, connections: 32, durationMs, warmupMs: 300, header };
  const r = await client("keepalive.mjs", options, cpu, durationMs + 20_000);
  return { value: r.rate, ops: r.responses, errors: r.errors > 0 ? [`${r.errors} socket errors`] : [] };
}

/** Opens `count` fresh connections and tallies which listener answered each. */
export function conns(port, { count, cpu }) {
  return client("conns.mjs", { port, count, concurrency: 32, maxMs: 120_000 }, cpu, 130_000);
}
