// Command-line arguments of the polybind command: parsed and checked, or a UsageError.

import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { parseAddress, type ProxyProtocolOptions } from "../mod.ts";

/** The usage text. */
export const USAGE = `Usage:
  polybind probe [--json]
  polybind serve [APP] [--host H] [--port P] [--uds PATH] [--listen ADDR]... [--workers N] [--shared]
                 [--grace-ms MS] [--worker-header] [--proxy-protocol [--proxy-trusted CIDR]...]
                 [--tls-cert FILE --tls-key FILE] [--handover lend|beside]

APP:  a module whose default export has fetch(request) (a Hono or h3 app, what deno serve runs);
      without it, a demo handler answers

ADDR: 127.0.0.1:8000, :8000, [::1]:8000, localhost:3000, unix:/run/app.sock, @abstract,
      fd://3, sd-listen, sd-listen:NAME, parent-listen:NAME
CIDR: an address or block the PROXY header may come from (default 127.0.0.0/8 and ::1)
FILE: HTTPS: the certificate chain and its private key, PEM files each worker reads as it
      starts (a reload, SIGHUP, reads them again: how certificates rotate)

Signals: SIGINT, SIGTERM stop gracefully (a second one at once); SIGHUP reloads (a new
generation of workers, then the old one drains); SIGUSR2 starts a new primary that takes
the sockets over, and this one stops once it serves. --handover: how each generation gets
its sockets (default: what polybind probe says under "reload")`;

/** Bad command-line arguments; the command exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Options of `polybind serve`. */
export interface ServeCommand {
  /** The fetch app module to serve; the demo handler without it. */
  app?: string;
  host?: string;
  port?: number;
  uds?: string;
  listen: string[];
  workers?: number;
  shared: boolean;
  /** How long a stop lets requests in flight finish (`--grace-ms`). */
  graceMs?: number;
  /** Every response says `x-polybind-worker: <generation>.<index>` (`--worker-header`). */
  workerHeader: boolean;
  /** Read a PROXY protocol header on every connection (`--proxy-protocol`), with these options. */
  proxyProtocol?: ProxyProtocolOptions;
  /** Serve HTTPS: the certificate chain and private key files (`--tls-cert`, `--tls-key`). */
  tls?: { cert: string; key: string };
  /** How each generation of workers gets its sockets (`--handover`). */
  handover?: "lend" | "beside";
}

/** A parsed command. */
export type Command =
  | { name: "probe"; json: boolean }
  | ({ name: "serve" } & ServeCommand);

function integer(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}: got ${JSON.stringify(text)}`);
  }
  return n;
}

/** An IP address or CIDR block, as `proxyProtocol.trusted` takes them (the listener checks them again). */
function checkBlock(text: string): string {
  const [address = "", prefix, ...more] = text.split("/");
  const family = address.includes("%") ? 0 : isIP(address);
  const width = family === 4 ? 32 : 128;
  if (
    family === 0 || more.length > 0 || (prefix !== undefined && !/^(?:0|[1-9]\d{0,2})$/.test(prefix)) ||
    Number(prefix ?? 0) > width
  ) {
    throw new UsageError(
      `--proxy-trusted must be an IP address or CIDR block such as 10.0.0.0/8: got ${JSON.stringify(text)}`,
    );
  }
  return text;
}

/** The options of `--proxy-protocol` with its `--proxy-trusted` blocks. */
function proxyOptions(on: boolean, trusted: string[] | undefined): ProxyProtocolOptions | undefined {
  if (!on) {
    if (trusted !== undefined) throw new UsageError("--proxy-trusted needs --proxy-protocol");
    return undefined;
  }
  return trusted === undefined ? {} : { trusted: trusted.map(checkBlock) };
}

function handoverOption(text: string | undefined): "lend" | "beside" | undefined {
  if (text === undefined || text === "lend" || text === "beside") return text;
  throw new UsageError(`--handover must be lend or beside: got ${JSON.stringify(text)}`);
}

/** `--tls-cert` and `--tls-key`: both or neither. */
function tlsOptions(cert: string | undefined, key: string | undefined): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (key === undefined) throw new UsageError("--tls-cert needs --tls-key FILE, the certificate's private key");
  if (cert === undefined) throw new UsageError("--tls-key needs --tls-cert FILE, the certificate chain");
  for (const [flag, file] of [["tls-cert", cert], ["tls-key", key]]) {
    if (file === "") throw new UsageError(`--${flag} must be a file path: got ""`);
  }
  return { cert, key };
}

function checkAddress(text: string): string {
  try {
    parseAddress(text);
    return text;
  } catch (err) {
    throw new UsageError(`--listen: ${(err as Error).message}`);
  }
}

/** The options of `polybind serve`, as parseArgs takes them. */
const SERVE_OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  uds: { type: "string" },
  listen: { type: "string", multiple: true },
  workers: { type: "string" },
  shared: { type: "boolean" },
  "grace-ms": { type: "string" },
  "worker-header": { type: "boolean" },
  "proxy-protocol": { type: "boolean" },
  "proxy-trusted": { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  handover: { type: "string" },
} as const;

/**
 * `--port -1` as `--port=-1`: a negative number after an option that takes a value is that
 * value (parseArgs would call it an ambiguous option), so that the option's own check says
 * what it must be.
 */
function joinNegatives(args: string[], options: Record<string, { type: string }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!, next = args[i + 1];
    if (arg === "--") return [...out, ...args.slice(i)];
    const taking = arg.startsWith("--") && options[arg.slice(2)]?.type === "string";
    if (taking && next !== undefined && /^-\d/.test(next)) out.push(`${arg}=${args[++i]}`);
    else out.push(arg);
  }
  return out;
}

/** parseArgs's error as one line; where an option met another instead of its value, both named. */
function usageOf(err: Error, args: string[]): UsageError {
  const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(err.message)?.[1];
  const at = args.findIndex((arg, i) => arg === ambiguous && args[i + 1]?.startsWith("-"));
  const value = at === -1 ? undefined : args[at + 1];
  if (ambiguous === undefined || value === undefined) return new UsageError(err.message.split("\n")[0]);
  return new UsageError(
    `${ambiguous} needs a value, not the option ${
      JSON.stringify(value)
    } (write ${ambiguous}=${value} if that is the value)`,
  );
}

/**
 * Parses the arguments after the program name.
 *
 * @throws {UsageError} Unknown command or option, or a bad value.
 */
export function parseCommand(argv: string[]): Command {
  const [name, ...rest] = argv;
  try {
    if (name === "probe") {
      const { values } = parseArgs({ args: rest, options: { json: { type: "boolean" } }, strict: true });
      return { name, json: values.json === true };
    }
    if (name === "serve") {
      const { values, positionals } = parseArgs({
        args: joinNegatives(rest, SERVE_OPTIONS),
        strict: true,
        allowPositionals: true,
        options: SERVE_OPTIONS,
      });
      if (positionals.length > 1) throw new UsageError(`One APP at most: got ${JSON.stringify(positionals)}`);
      return {
        name,
        app: positionals[0],
        host: values.host,
        port: integer("port", values.port, 0, 65535),
        uds: values.uds,
        listen: (values.listen ?? []).map(checkAddress),
        workers: integer("workers", values.workers, 1, 1024),
        shared: values.shared === true,
        graceMs: integer("grace-ms", values["grace-ms"], 0, 3_600_000),
        workerHeader: values["worker-header"] === true,
        proxyProtocol: proxyOptions(values["proxy-protocol"] === true, values["proxy-trusted"]),
        tls: tlsOptions(values["tls-cert"], values["tls-key"]),
        handover: handoverOption(values.handover),
      };
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw usageOf(err as Error, rest);
  }
  throw new UsageError(name === undefined ? "A command is needed" : `Unknown command ${JSON.stringify(name)}`);
}
