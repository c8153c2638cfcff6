// `npm run check:publish`: `deno publish --dry-run` passes (type check, no slow types) and the
// JSR package holds only what belongs in it: the sources of mod.ts, src/, adapters/ and cli/,
// README.md, LICENSE and deno.json, with every entry point of deno.json's "exports". No tests,
// examples, scripts or build output. Runs offline: a dry run does not contact JSR.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { bin, root } from "./_root.mjs";

const ALLOWED = [/^mod\.ts$/, /^deno\.json$/, /^README\.md$/, /^LICENSE$/, /^(src|adapters|cli)\/[\w.-]+\.ts$/];
const FORBIDDEN = /\.test\.ts$|(^|\/)_?tests?\//;

const run = spawnSync(bin("deno"), ["publish", "--dry-run", "--allow-dirty"], {
  cwd: root,
  encoding: "utf8",
  maxBuffer: 64 << 20,
  env: { ...process.env, NO_COLOR: "1" },
});
const output = `${run.stdout}${run.stderr}`;
const problems = [];
if (run.status !== 0) {
  const lines = output.split("\n").filter((l) => !/Failed resolving types|@types\/node\/index\.d\.ts/.test(l));
  problems.push(`deno publish --dry-run --allow-dirty exited with ${run.status}:\n${lines.join("\n")}`);
}

const prefix = new URL(`file://${root}/`).href;
const files = [...output.matchAll(/^\s+(file:\/\/\S+) \(/gm)].map((m) => decodeURI(m[1].slice(prefix.length)));
if (run.status === 0 && files.length === 0) problems.push("deno publish --dry-run listed no files");
for (const file of files) {
  if (!ALLOWED.some((re) => re.test(file)) || FORBIDDEN.test(file)) {
    problems.push(`${file} does not belong in the JSR package: narrow deno.json "publish.include"/"exclude"`);
  }
}
const denoJson = JSON.parse(readFileSync(`${root}/deno.json`, "utf8"));
const exportsMap = typeof denoJson.exports === "string" ? { ".": denoJson.exports } : denoJson.exports;
for (const need of [...Object.values(exportsMap).map((p) => p.replace(/^\.\//, "")), "README.md", "LICENSE"]) {
  if (run.status === 0 && !files.includes(need)) problems.push(`${need} is missing from the JSR package`);
}

for (const p of problems) console.error(p);
console.log(
  `publish-check: ${files.length} files in ${denoJson.name}@${denoJson.version}, ${problems.length} problems`,
);
process.exit(problems.length > 0 ? 1 : 0);
