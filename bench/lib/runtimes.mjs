// The four runtimes the benchmark runs on, how to start a script on each, and which build of
// polybind each imports: mod.ts itself on Deno and Bun, a fresh tsc build of the working tree
// (in a temporary directory) on Node.js, which cannot run .ts.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository's root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Every runtime name `--runtimes` accepts, in the order they run. */
export const RUNTIME_NAMES = ["deno", "bun", "node20", "node24"];

/**
 * Compiles the library for Node.js into a temporary directory (removed at exit).
 *
 * @param libRoot The polybind checkout to compile (its tsconfig.json and node_modules).
 * @returns The file URL of the compiled mod.js.
 */
export function buildForNode(libRoot) {
  const out = mkdtempSync(join(tmpdir(), "polybind-bench-"));
  process.on("exit", () => rmSync(out, { recursive: true, force: true }));
  const tsc = join(libRoot, "node_modules", "typescript", "bin", "tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.json", "--outDir", out, "--declaration", "false"], {
      cwd: libRoot,
      stdio: "pipe",
      timeout: 180_000,
    });
  } catch (err) {
    // tsc still emits JavaScript when types do not check; only a missing file is fatal.
    if (!existsSync(join(out, "mod.js"))) throw err;
    process.stderr.write(`warning: tsc reported errors, benchmarking what it emitted:\n${err.stdout}\n`);
  }
  return pathToFileURL(join(out, "mod.js")).href;
}

/** The path of Node.js 24's binary, fetched by npx on first use. */
function node24Path() {
  return execFileSync("npx", ["-y", "node@24", "-p", "process.execPath"], {
    encoding: "utf8",
    timeout: 300_000,
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
}

function versionOf(bin, args) {
  return execFileSync(bin, args, { encoding: "utf8", timeout: 30_000 }).trim().split("\n")[0];
}

/**
 * Describes the runtimes asked for.
 *
 * @param names Names from {@link RUNTIME_NAMES}.
 * @param libRoot The polybind checkout Deno and Bun import (its mod.ts).
 * @param nodeLib The URL of the compiled mod.js for Node.js.
 * @returns `{ name, version, command(script, options) }` per runtime, where command gives the
 *   argv that runs `script` with its JSON options.
 */
export function describeRuntimes(names, libRoot, nodeLib) {
  const modTs = pathToFileURL(join(libRoot, "mod.ts")).href;
  const bin = (name) => join(ROOT, "node_modules", ".bin", name);
  const make = {
    deno: () => ({
      exe: bin("deno"),
      pre: ["run", "-A", "--unstable-net", "--v8-flags=--expose-gc"],
      lib: modTs,
      version: versionOf(bin("deno"), ["--version"]).replace(/^deno /, "").split(" ")[0],
    }),
    bun: () => ({ exe: bin("bun"), pre: ["run"], lib: modTs, version: versionOf(bin("bun"), ["--version"]) }),
    node20: () => ({ exe: process.execPath, pre: ["--expose-gc"], lib: nodeLib, version: process.versions.node }),
    node24: () => {
      const exe = node24Path();
      return { exe, pre: ["--expose-gc"], lib: nodeLib, version: versionOf(exe, ["--version"]).slice(1) };
    },
  };
  return names.map((name) => {
    const rt = make[name]();
    return {
      name,
      version: rt.version,
      lib: rt.lib,
      command: (script, options) => [rt.exe, [...rt.pre, script, JSON.stringify(options)]],
    };
  });
}
