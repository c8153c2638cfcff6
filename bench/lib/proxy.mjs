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
 * One pair of servers (with the header and without), started in the order given: round 0 warms
 * them up and is dropped; the rounds after it, per side.
 */
async function onePair(rt, ctx, m, order) {
  const results = { poly: [], raw: [] };
  const load = m.load ?? newConnections;
  const sides = [];
  try {
    for (const name of order) sides.push([name, await startSide(rt, ctx, m, name === "poly")]);
    const run = async (name, server, seconds) => {
      const cpu = server.cpuSeconds();
      const start = performance.now();
      const result = await load(server.info.port, seconds, name === "poly", ctx.loadCpu);
      const used = server.cpuSeconds() - cpu;
      results[name].push({
        ...result,
        cpuUs: (used * 1e6) / result.ops,
        busy: used / (performance.now() - start) * 1000,
      });
    };
    for (let r = 0; r <= ctx.rounds; r++) {
      const seconds = r === 0 ? ctx.warmSeconds : ctx.seconds;
      // In turn, or (--concurrent) both at once, each server in a CPU group of equal weight.
      if (ctx.concurrent) await Promise.all(sides.map(([name, server]) => run(name, server, seconds)));
      else for (const [name, server] of sides) await run(name, server, seconds);
    }
  } finally {
    for (const [, server] of sides) await server.stop();
  }
  return { poly: results.poly.slice(1), raw: results.raw.slice(1) };
}

/**
 * One PROXY measure: `ctx.pairs` pairs of servers one after the other (started poly first, then
 * raw first, and so on), `ctx.rounds` rounds each; the row as rateMeasure makes it, over the
 * rounds of every pair. The rounds of one pair agree closely, but two pairs of the same code can
 * differ by several per cent (where each process's memory lands, it seems): more pairs average
 * that out.
 */
export async function proxyMeasure(rt, ctx, m) {
  const all = { poly: [], raw: [] };
  const pairRatios = [];
  for (let p = 0; p < (ctx.pairs ?? 1); p++) {
    const pair = await onePair(rt, ctx, m, p % 2 === 0 ? ["poly", "raw"] : ["raw", "poly"]);
    pairRatios.push(median(pair.poly.map((x, i) => x.value / pair.raw[i].value)));
    all.poly.push(...pair.poly);
    all.raw.push(...pair.raw);
  }
  const counted = (side) => all[side];
  const values = (side) => counted(side).map((x) => x.value);
  const errors = ["poly", "raw"].flatMap((s) => counted(s).flatMap((x) => x.errors.map((e) => `${s}: ${e}`)));
  const ratio = median(values("poly").map((p, i) => p / values("raw")[i]));
  return [{
    runtime: rt.name,
    id: m.id,
    measure: m.measure,
    unit: m.unit,
    poly: median(values("poly")),
    raw: median(values("raw")),
    ratio,
    cpuRatio: median(counted("raw").map((x) => x.cpuUs)) / median(counted("poly").map((x) => x.cpuUs)),
    target: m.min === undefined ? undefined : `ratio >= ${m.min}`,
    met: m.min === undefined ? undefined : ratio >= m.min && errors.length === 0,
    details: {
      poly: values("poly"),
      raw: values("raw"),
      polyCpuUs: counted("poly").map((x) => x.cpuUs),
      rawCpuUs: counted("raw").map((x) => x.cpuUs),
      polyBusy: median(counted("poly").map((x) => x.busy)),
      rawBusy: median(counted("raw").map((x) => x.busy)),
      share: ctx.share,
      pairRatios,
      errors,
    },
  }];
}
