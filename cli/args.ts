// Command-line arguments of the polybind command: parsed and checked, or a UsageError.

import { parseArgs } from "node:util";

/** The usage text. */
export const USAGE = `Usage:
  polybind probe [--json]
  polybind serve [--host H] [--port P] [--uds PATH] [--workers N] [--shared]`;

/** Bad command-line arguments; the command exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A parsed command. */
export type Command =
  | { name: "probe"; json: boolean }
  | { name: "serve"; host?: string; port?: number; uds?: string; workers?: number; shared: boolean }
  | { name: "worker" };

function integer(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}: got ${JSON.stringify(text)}`);
  }
  return n;
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
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: {
          host: { type: "string" },
          port: { type: "string" },
          uds: { type: "string" },
          workers: { type: "string" },
          shared: { type: "boolean" },
        },
      });
      return {
        name,
        host: values.host,
        port: integer("port", values.port, 0, 65535),
        uds: values.uds,
        workers: integer("workers", values.workers, 1, 1024),
        shared: values.shared === true,
      };
    }
    if (name === "__worker") return { name: "worker" };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message.split("\n")[0]);
  }
  throw new UsageError(name === undefined ? "A command is needed" : `Unknown command ${JSON.stringify(name)}`);
}
