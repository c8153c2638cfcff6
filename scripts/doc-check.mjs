// `npm run check:docs`: the public API's documentation is complete. Runs `deno doc --lint` on
// every entry point of deno.json (missing JSDoc, missing return types, private types), then
// checks with `deno doc --json` that every exported function and class has a summary, a
// `@param` per parameter, a `@returns` unless it returns nothing, and an `@example`; every
// exported type has a summary. Prints each problem as file:line and exits 1 if there is one.
// (`--quiet` hides Deno's warnings about resolving @types/node's `/// <reference path>`s, which
// are about Deno's resolver, not this package.)

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { bin, root } from "./_root.mjs";

const denoJson = JSON.parse(readFileSync(`${root}/deno.json`, "utf8"));
const entries = typeof denoJson.exports === "string" ? [denoJson.exports] : Object.values(denoJson.exports);

function deno(args) {
  return spawnSync(bin("deno"), args, {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 64 << 20,
    env: { ...process.env, NO_COLOR: "1" },
  });
}

const problems = [];

const lint = deno(["doc", "--lint", "--quiet", ...entries]);
if (lint.status !== 0) problems.push(`deno doc --lint ${entries.join(" ")} failed:\n${lint.stdout}${lint.stderr}`);

const json = deno(["doc", "--json", "--quiet", ...entries]);
if (json.status !== 0) {
  console.error(json.stderr);
  process.exit(1);
}

/** Whether a function's return type says it returns nothing. */
function returnsNothing(def) {
  const repr = def.returnType?.repr ?? "";
  const args = def.returnType?.value?.typeParams ?? def.returnType?.typeRef?.typeParams ?? [];
  if (repr === "void" || repr === "undefined") return true;
  return repr === "Promise" && args.length === 1 && ["void", "undefined"].includes(args[0].repr);
}

function checkDeclaration(name, declaration) {
  const where = `${relative(root, fileURLToPath(declaration.location.filename))}:${declaration.location.line}`;
  const doc = declaration.jsDoc ?? {};
  const tags = doc.tags ?? [];
  const has = (kind) => tags.some((t) => t.kind === kind);
  const missing = [];
  if (!doc.doc?.trim()) missing.push("a summary");
  if (declaration.kind === "function") {
    const params = declaration.def.params ?? [];
    const documented = tags.filter((t) => t.kind === "param").length;
    if (documented < params.length) missing.push(`@param for each of its ${params.length} parameters`);
    if (!has("return") && !returnsNothing(declaration.def)) missing.push("@returns");
    if (!has("example")) missing.push("@example");
  }
  if (declaration.kind === "class" && !has("example")) missing.push("@example");
  if (missing.length > 0) problems.push(`${where}: ${name} (${declaration.kind}) has no ${missing.join(", ")}`);
}

const nodes = JSON.parse(json.stdout).nodes;
let count = 0;
for (const [file, module] of Object.entries(nodes)) {
  const symbols = module.symbols ?? (Array.isArray(module) ? module : []);
  if (!Array.isArray(symbols)) throw new Error(`Unexpected deno doc --json output for ${file}`);
  for (const symbol of symbols) {
    for (const declaration of symbol.declarations ?? []) {
      if (declaration.declarationKind !== "export" || declaration.kind === "moduleDoc") continue;
      count++;
      checkDeclaration(symbol.name, declaration);
    }
  }
}

if (count === 0) problems.push(`deno doc --json found no exports in ${entries.join(" ")}`);
for (const p of problems) console.error(p);
console.log(`doc-check: ${count} exported declarations in ${entries.join(", ")}, ${problems.length} problems`);
process.exit(problems.length > 0 ? 1 : 0);
