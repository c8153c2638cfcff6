// Shared by the scripts: the repository root and the project's own tools in node_modules/.bin.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** The path of tool `name` from node_modules/.bin, or `name` to find it on PATH. */
export function bin(name) {
  const local = join(root, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

/** The command running Node.js `major`: this process's node if it is that major, else npx node@major. */
export function node(major) {
  return Number(process.versions.node.split(".")[0]) === major ? [process.execPath] : ["npx", "-y", `node@${major}`];
}
