// Measure 7 (issue 15): what reading a PROXY v2 header costs. polybind's server with
// withProxyProtocol, loaded by clients that send a header first on each connection, against the
// same server without it, loaded by the same clients without the header, in turn as the other
// measures are: new connections (wrk with bench/clients/proxy.lua, "Connection: close") and
// kept-alive requests after the header (bench/clients/keepalive.mjs; wrk cannot send bytes once
// per connection). In the table "polybind" is with the header and "raw" without it.
// 7a trusts 127.0.0.1 only, so each connection's peer is checked: on Node.js and Bun that is a
// getpeername() the server without the header never makes (Deno asks every peer at accept).
// 7d trusts every peer (0.0.0.0/0: no peer is asked), which leaves the header's read and parse.
// 7c is 7a with both servers reading each connection's remoteAddr, as one behind a balancer
// does: the server without the header then asks its peer too.
// With --concurrent both servers are loaded at the same time, each in a CPU group of equal
// weight (cgroup.mjs): the host's slow moments then hit both alike.

import { join } from "node:path";
import { keepAlive, wrk } from "./load.mjs";
import { alternate, measured, rateRow } from "./measures.mjs";
import { startServer } from "./proc.mjs";
import { median } from "./report.mjs";
import { ROOT } from "./runtimes.mjs";

const SCRIPT = join(ROOT, "bench", "clients", "proxy.lua");

/** New connections through wrk, each with a v2 header first or with none. */
const newConnections = (port, seconds, header, cpu) =>
  wrk(port, { seconds, close: true, cpu, script: SCRIPT, scriptArgs: header ? ["v2"] : [] });

/**
 * The PROXY measures: server mode, the trusted blocks, load (new connections where none is
 * given), and the ratio they must reach (none: shown, not judged).
 */
export const PROXY_MEASURES = [
  {
    id: "7d",
    measure: "new connections, PROXY v2 header vs none, every peer trusted (the header alone)",
    unit: "conn/s",
    mode: "close",
    trusted: ["0.0.0.0/0"],
    min: 0.97,
  },
  {
    id: "7a",
    measure: "new connections, PROXY v2 header vs none, the peer checked (a getpeername on Node.js and Bun)",
    unit: "conn/s",
    mode: "close",
  },
  {
    id: "7c",
    measure: "new connections, PROXY v2 header vs none, both reading remoteAddr",
    unit: "conn/s",
    mode: "close-addr",
    min: 0.97,
  },
  {
    id: "7b",
    measure: "keep-alive after a PROXY v2 header vs none",
    unit: "req/s",
    mode: "rw",
    load: (port, seconds, header, cpu) => keepAlive(port, { seconds, header: header ? "v2" : undefined, cpu }),
    min: 0.98,
  },
];

function startSide(rt, ctx, m, proxy) {
  const [cmd, args] = rt.command(join(ROOT, "bench", "servers", "poly.mjs"), {
    mode: m.mode,
    lib: rt.lib,
    proxy,
    trusted: m.trusted,
    maxMs: ctx.serverMaxMs,
  });
  // Loaded at once (--concurrent), each server gets an equal share of the core.
  return startServer(cmd, args, { cpu: ctx.serverCpu, group: ctx.concurrent ? `proxy-${proxy}` : undefined });
}

/**
 * One PROXY measure: `ctx.pairs` pairs of servers one after the other (started poly first, then
 * raw first, and so on), `ctx.rounds` rounds each after a warm-up round; the row as rateMeasure
 * makes it, over the rounds of every pair. The rounds of one pair agree closely, but two pairs
 * of the same code can differ by several per cent (under --cap, up to ±5 % for a pair's whole
 * life: BENCHMARKS.md): more pairs average that out.
 */
export async function proxyMeasure(rt, ctx, m) {
  const load = m.load ?? newConnections;
  const counted = { poly: [], raw: [] };
  const pairRatios = [];
  for (let p = 0; p < ctx.pairs; p++) {
    const pair = await alternate({
      start: (name) => startSide(rt, ctx, m, name === "poly"),
      order: p % 2 === 0 ? ["poly", "raw"] : ["raw", "poly"],
      rounds: ctx.rounds + 1,
      // In turn, or (--concurrent) both at once, each server in a CPU group of equal weight.
      parallel: ctx.concurrent,
      run: (server, r, name) =>
        measured(
          server,
          () => load(server.info.port, r === 0 ? ctx.warmSeconds : ctx.seconds, name === "poly", ctx.loadCpu),
        ),
    });
    const [poly, raw] = [pair.poly.slice(1), pair.raw.slice(1)];
    pairRatios.push(median(poly.map((x, i) => x.value / raw[i].value)));
    counted.poly.push(...poly);
    counted.raw.push(...raw);
  }
  return [rateRow(rt, ctx, m, counted, { pairRatios })];
}
