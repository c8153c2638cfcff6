// `polybind serve [APP]`: a thin user of supervise(). It turns the options into a supervisor's,
// prints where it listens once every worker serves, what happens to the workers, and on stop
// what each one served.

import {
  type Addr,
  formatAddress,
  parseAddress,
  type ServerConfig,
  supervise,
  type SupervisorEvent,
  type SupervisorSummary,
} from "../mod.ts";
import { capabilities } from "../mod.ts";
import type { ServeCommand } from "./args.ts";
import { strategyOf } from "./probe.ts";

/** The demo app, next to this file (.ts from sources, .js when built). */
const DEMO = new URL(import.meta.url.endsWith(".ts") ? "./demo_app.ts" : "./demo_app.js", import.meta.url);

/**
 * An address as the command prints it, written by formatAddress: a URL (`http://[::1]:8000`,
 * `https://` with TLS) or `unix:PATH`.
 */
function printable(a: Addr, tls: boolean): string {
  if (a.transport === "unix") return `unix:${formatAddress({ uds: a.path }).replace(/^unix:/, "")}`;
  return `${tls ? "https" : "http"}://${formatAddress({ host: a.hostname, port: a.port }).replace(/^tcp:\/\//, "")}`;
}

/**
 * What happens to the workers, one line each. A slot whose worker fails again the same way
 * before any worker of it has served (an app that cannot be loaded) is told of once: the server
 * stops after 5 such failures with a line naming the error.
 */
function printer(): (event: SupervisorEvent) => void {
  /** The error each slot's last worker ended with, while none of that slot has served since. */
  const failing = new Map<number, string | undefined>();
  return (event) => {
    if (event.type === "died") {
      const same = failing.has(event.index) && failing.get(event.index) === event.error;
      failing.set(event.index, event.error);
      if (same) return;
    } else if (event.type === "ready") failing.delete(event.index);
    print(event);
  };
}

/** One event as its line. */
function print(event: SupervisorEvent): void {
  if (event.type === "ready") {
    if (event.again) console.log(`polybind serve: worker ${event.index} serves again`);
  } else if (event.type === "died") {
    const why = event.error ? `: ${event.error}` : "";
    console.error(
      `polybind serve: worker ${event.index} ended${why}${event.respawning ? "; starting it again" : ""}`,
    );
  } else if (event.type === "error") {
    console.error(`polybind serve: worker ${event.index}: ${event.error} (answered 500)`);
  } else if (event.type === "reloading") {
    console.log(`polybind serve: reloading: starting generation ${event.generation}`);
  } else if (event.type === "reloaded") {
    console.log(`polybind serve: generation ${event.generation} serves (${event.ms} ms); the old one drains`);
  } else if (event.type === "reload-failed") {
    console.error(`polybind serve: reload failed: ${event.reason}; generation ${event.generation - 1} serves on`);
  } else if (event.type === "successor") {
    if (event.pid !== undefined) {
      console.log(`polybind serve: new primary started (pid ${event.pid}): it serves, this one stops`);
    } else console.error(`polybind serve: SIGUSR2: no new primary: ${event.reason}`);
  } else if (event.type === "stopping") {
    console.log(`polybind serve: ${event.signal ?? "stop"}: stopping`);
  } else console.log(`polybind serve: ${event.signal ?? "stop"} while stopping: ending the workers at once`);
}

/** Prints what each worker served and how many were started again. */
function report(summary: SupervisorSummary): void {
  let total = 0;
  summary.served.forEach((n, i) => {
    total += n ?? 0;
    console.log(n === undefined ? `worker ${i} did not report` : `worker ${i} served ${n} requests`);
  });
  console.log(`total ${total} requests`);
  console.log(`${summary.respawns} worker(s) started again`);
}

/** Runs `polybind serve`; resolves with the exit code once the server has shut down. */
export async function runServe(options: ServeCommand): Promise<number> {
  const given: (ServerConfig | string)[] = options.listen.length > 0 ? options.listen : [
    options.uds !== undefined
      ? { uds: options.uds }
      : { host: options.host ?? "127.0.0.1", port: options.port ?? 8000 },
  ];
  const proxyProtocol = options.proxyProtocol;
  const listen = proxyProtocol === undefined
    ? given
    : given.map((c) => ({ ...(typeof c === "string" ? parseAddress(c) : c), proxyProtocol }));
  let server;
  try {
    server = await supervise({
      ...(options.app !== undefined ? { app: options.app } : { app: DEMO }),
      listen,
      workers: options.workers,
      shared: options.shared,
      graceMs: options.graceMs,
      workerHeader: options.workerHeader,
      ...(options.handover ? { handover: options.handover } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      onEvent: printer(),
    });
  } catch (err) {
    const summary = (err as { summary?: SupervisorSummary }).summary;
    if (summary === undefined) throw err;
    // Stopped (a signal) or failed before every worker served.
    if (summary.reason !== undefined) console.error(`polybind serve: ${summary.reason}`);
    return summary.code;
  }
  const where = server.addrs.map((a) => printable(a, options.tls !== undefined)).join(", ");
  console.log(
    `polybind serve: listening on ${where} with ${server.workers} worker(s) (${server.mode}) on ${capabilities().runtime}`,
  );
  for (const plan of server.plans) console.log(`strategy: ${strategyOf(plan)} (${plan.reason})`);
  console.log(`reload: ${server.handover.handover} (${server.handover.reason})`);
  const summary = await server.done;
  if (summary.reason !== undefined) console.error(`polybind serve: ${summary.reason}; stopped`);
  report(summary);
  return summary.code;
}
