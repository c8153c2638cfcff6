// `npm start` and `npm run probe` build first only when dist/ is missing or older than the
// sources: a tsc build takes seconds, a look at the sources' modification times a millisecond.
// Stale means: dist/cli/polybind.js (written by every build) is missing, or tsconfig.json or a
// .ts file of mod.ts, src/, adapters/ or cli/ was modified after it. A deleted source leaves its
// old .js in dist/, which nothing imports any more.
// Usage: node scripts/build-if-stale.mjs   (runs `npm run build` when stale, else nothing)

import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { root } from "./_root.mjs";

const OUTPUT = join(root, "dist", "cli", "polybind.js");
const SOURCE_DIRS = ["src", "adapters", "cli"];

/** The files dist/ is built from. */
function sources() {
  const files = [join(root, "mod.ts"), join(root, "tsconfig.json")];
  for (const dir of SOURCE_DIRS) {
    for (const name of readdirSync(join(root, dir))) if (name.endsWith(".ts")) files.push(join(root, dir, name));
  }
  return files;
}

/** Why dist/ needs a build, or undefined when it is up to date. */
function staleReason() {
  let built;
  try {
    built = statSync(OUTPUT).mtimeMs;
  } catch {
    return "dist/ has not been built";
  }
  const newer = sources().find((file) => statSync(file).mtimeMs > built);
  return newer === undefined ? undefined : `${newer.slice(root.length + 1)} changed since the last build`;
}

const reason = staleReason();
if (reason !== undefined) {
  console.error(`polybind: ${reason}: building`);
  const result = spawnSync("npm", ["run", "build"], {
    cwd: root,
    stdio: "inherit",
    shell: process.platform === "win32",
  });
  process.exitCode = result.status ?? 1;
}
