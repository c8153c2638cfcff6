#!/usr/bin/env node
// The polybind command: `probe` shows what this runtime supports, `serve` runs an N-worker
// HTTP server. Exit codes: 0 done, 1 the OS refused (e.g. port in use), 2 bad arguments.

import process from "node:process";
import { ListenError } from "../mod.ts";
import { type Command, parseCommand, USAGE, UsageError } from "./args.ts";
import { runProbe } from "./probe.ts";
import { runServe } from "./serve.ts";

// Output to a reader that has gone (`polybind serve | head -1`, a closed terminal) is dropped:
// the server goes on and stops as it would, with no stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
}

async function main(argv: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`polybind: ${err.message}\n${USAGE}`);
    return 2;
  }
  try {
    if (command.name === "probe") {
      runProbe(command.json);
      return 0;
    }
    return await runServe(command);
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) {
      console.error(`polybind: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof ListenError) {
      console.error(`polybind: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
