// `npm run test:pack`: the npm package as users get it. Builds, packs the tarball and checks it
// holds only compiled ESM, .d.ts files, README.md, LICENSE and package.json; installs it into an
// empty folder (`npm install <tgz>`: polybind has no dependencies, so no registry is needed);
// imports "polybind" by name on Node.js 20, Node.js 24 and Bun; runs `npx polybind probe` and
// `bunx --bun polybind probe` there; and compiles scripts/pack-consumer/main.ts, a program using
// every export, with tsc against the installed types (TypeScript and @types/node come from this
// repository's node_modules), then runs it on Node.js 20, Node.js 24 and Bun.
// Usage: node scripts/pack-check.mjs [--keep]   (--keep leaves the temporary folder)

import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { bin, node, root } from "./_root.mjs";

const started = Date.now();
const keep = process.argv.includes("--keep");
const work = mkdtempSync(join(tmpdir(), "polybind-pack-"));
const consumer = join(work, "consumer");
const problems = [];

/** Runs a command; returns its stdout, or records a problem (and returns undefined) if it fails. */
function run(what, command, options = {}) {
  const [cmd, ...args] = command;
  const t = Date.now();
  const result = spawnSync(cmd, args, { cwd: consumer, encoding: "utf8", timeout: 60_000, ...options });
  const ok = result.status === 0;
  console.log(`pack-check: ${ok ? "ok  " : "FAIL"} ${what} (${Date.now() - t} ms)`);
  if (ok) return result.stdout;
  problems.push(`${what}: \`${command.join(" ")}\` exited with ${result.status ?? result.signal ?? result.error}
${result.stdout ?? ""}${result.stderr ?? ""}`);
  return undefined;
}

/** Records a problem unless `ok`. */
function expect(ok, problem) {
  if (!ok) problems.push(problem);
}

/** Runs a program that ends by printing "... ok on <runtime> ..." and checks that it does. */
function expectOk(what, command) {
  const out = run(what, command);
  if (out !== undefined) expect(/ ok on (node|bun) /.test(out), `${what} did not say "ok":\n${out}`);
}

/** Checks that `polybind probe --json`, run by `what`, reports `runtime`. */
function expectProbe(what, command, runtime) {
  const out = run(what, command);
  if (out === undefined) return;
  try {
    const found = JSON.parse(out).capabilities.runtime;
    expect(found === runtime, `${what} reports runtime ${found}, expected ${runtime}`);
  } catch (err) {
    problems.push(`${what} printed no probe JSON (${err}):\n${out}`);
  }
}

const ALLOWED = /^(package\.json|README\.md|LICENSE|dist\/[\w/.-]+\.(js|d\.ts))$/;

/** Packs the package and checks what is in it. Returns the tarball's path. */
function pack() {
  if (run("npm run build", ["npm", "run", "build", "--silent"], { cwd: root }) === undefined) return undefined;
  const out = run("npm pack", ["npm", "pack", "--json", "--ignore-scripts", "--pack-destination", work], { cwd: root });
  if (out === undefined) return undefined;
  const [info] = JSON.parse(out);
  const files = info.files.map((f) => f.path);
  for (const file of files) expect(ALLOWED.test(file), `${file} does not belong in the npm package`);
  const pkg = createRequire(import.meta.url)(join(root, "package.json"));
  const targets = [...Object.values(pkg.exports).flatMap((c) => Object.values(c)), ...Object.values(pkg.bin)];
  for (const target of targets) {
    expect(files.includes(target.replace(/^\.\//, "")), `${target}, named in package.json, is not in the tarball`);
  }
  console.log(`pack-check: ${info.filename}: ${files.length} files, ${info.size} bytes packed`);
  return join(work, info.filename);
}

/** Every export of the installed "polybind", types included, and those main.ts imports, by TypeScript. */
async function exportNames() {
  const ts = (await import(pathToFileURL(join(root, "node_modules", "typescript", "lib", "typescript.js")).href))
    .default;
  const program = ts.createProgram([join(consumer, "main.ts")], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(join(consumer, "main.ts"));
  const used = new Set();
  let exported = [];
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || statement.moduleSpecifier.text !== "polybind") continue;
    const module = checker.getSymbolAtLocation(statement.moduleSpecifier);
    if (module) exported = checker.getExportsOfModule(module).map((s) => s.name);
    for (const element of statement.importClause?.namedBindings?.elements ?? []) used.add(element.name.text);
  }
  return { exported: exported.sort(), used };
}

async function main() {
  const tarball = pack();
  if (tarball === undefined) return;

  mkdirSync(consumer);
  const manifest = { name: "polybind-consumer", private: true, type: "module" };
  writeFileSync(join(consumer, "package.json"), JSON.stringify(manifest, null, 2));
  const install = ["npm", "install", tarball, "--no-save", "--no-audit", "--no-fund", "--prefer-offline"];
  if (run("npm install <tarball> into an empty folder", install) === undefined) return;

  // Import by package name on each runtime.
  const values = Object.keys(await import(pathToFileURL(join(root, "dist", "mod.js")).href)).sort();
  copyFileSync(join(root, "scripts", "pack-consumer", "smoke.mjs"), join(consumer, "smoke.mjs"));
  const smoke = ["smoke.mjs", JSON.stringify(values)];
  expectOk('import "polybind" on Node.js 20', [...node(20), ...smoke, "node"]);
  expectOk('import "polybind" on Node.js 24', [...node(24), ...smoke, "node"]);
  expectOk('import "polybind" on Bun', [bin("bun"), ...smoke, "bun"]);

  // The command, as users run it.
  expectProbe("npx polybind probe --json", ["npx", "--no", "polybind", "probe", "--json"], "node");
  expectProbe("bunx --bun polybind probe --json", [bin("bunx"), "--bun", "polybind", "probe", "--json"], "bun");

  // A TypeScript program using every export, compiled against the installed types.
  copyFileSync(join(root, "scripts", "pack-consumer", "main.ts"), join(consumer, "main.ts"));
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2022"],
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      typeRoots: [join(root, "node_modules", "@types")],
      types: ["node"],
      outDir: "out",
      noEmitOnError: true,
    },
    files: ["main.ts"],
  };
  writeFileSync(join(consumer, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
  const { exported, used } = await exportNames();
  expect(exported.length > 0, 'TypeScript found no exports in the installed "polybind"');
  const unused = exported.filter((name) => !used.has(name));
  expect(unused.length === 0, `scripts/pack-consumer/main.ts does not use these exports: ${unused.join(", ")}`);
  const missing = [...used].filter((name) => !exported.includes(name));
  expect(missing.length === 0, `"polybind" does not export: ${missing.join(", ")}`);
  if (run("tsc: a TypeScript program using every export", [bin("tsc"), "-p", "tsconfig.json"]) === undefined) return;
  expectOk("the compiled program on Node.js 20", [...node(20), "out/main.js"]);
  expectOk("the compiled program on Node.js 24", [...node(24), "out/main.js"]);
  expectOk("the compiled program on Bun", [bin("bun"), "out/main.js"]);
}

try {
  await main();
} catch (err) {
  problems.push(String(err?.stack ?? err));
} finally {
  if (keep) console.log(`pack-check: kept ${work}`);
  else if (existsSync(work)) rmSync(work, { recursive: true, force: true });
}
for (const p of problems) console.error(`\n${p}`);
console.log(`pack-check: ${problems.length} problems in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(problems.length > 0 ? 1 : 0);
