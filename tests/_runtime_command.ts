// How to start another process of this same runtime on a script, with the same network flags.

import process from "node:process";
import { capabilities } from "../mod.ts";

/**
 * The command and arguments that run `script` on the runtime running this code.
 *
 * @param script Path of a .ts (Deno, Bun) or .js (Node) file.
 * @param args Arguments for the script.
 */
export function runtimeCommand(script: string, args: string[] = []): [string, string[]] {
  const caps = capabilities();
  if (caps.runtime === "deno") {
    return [process.execPath, ["run", "-A", ...(caps.udp ? ["--unstable-net"] : []), script, ...args]];
  }
  return [process.execPath, [script, ...args]];
}
