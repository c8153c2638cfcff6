// The package's metadata agrees with itself: one version in package.json, deno.json and
// CHANGELOG.md; the same entry points in package.json and deno.json; only what users need in
// the npm and JSR packages. Runs from tests/ (Deno, Bun) and from .build/tests/ (Node.js).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as mod from "../mod.ts";

interface PackageJson {
  name: string;
  version: string;
  license: string;
  type: string;
  main: string;
  types: string;
  exports: Record<string, Record<string, string>>;
  files: string[];
  bin: Record<string, string>;
  scripts: Record<string, string>;
}

interface DenoJson {
  name: string;
  version: string;
  license: string;
  exports: string | Record<string, string>;
  publish: { include: string[]; exclude?: string[] };
}

/** The repository root: the nearest folder above this file with polybind's package.json. */
function findRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file) && (JSON.parse(readFileSync(file, "utf8")) as { name?: string }).name === "polybind") {
      return dir;
    }
  }
  throw new Error("Cannot find the repository root from this test file");
}

const root = findRoot();
const read = (file: string): string => readFileSync(join(root, file), "utf8");
const pkg = JSON.parse(read("package.json")) as PackageJson;
const deno = JSON.parse(read("deno.json")) as DenoJson;
const denoExports: Record<string, string> = typeof deno.exports === "string" ? { ".": deno.exports } : deno.exports;

/** The compiled file of source `./x/y.ts` in the npm package: `./dist/x/y` + `ext`. */
const compiled = (source: string, ext: ".js" | ".d.ts"): string =>
  source.replace(/^\.\//, "./dist/").replace(/\.ts$/, ext);

describe("version", () => {
  test("package.json and deno.json have the same version, a semver", () => {
    assert.match(pkg.version, /^\d+\.\d+\.\d+(-[\w.]+)?$/);
    assert.equal(deno.version, pkg.version);
  });

  test("CHANGELOG.md's latest release is this version", () => {
    const releases = [...read("CHANGELOG.md").matchAll(/^## \[?(\d+\.\d+\.\d+[^\]\s]*)\]?/gm)].map((m) => m[1]);
    assert.equal(releases[0], pkg.version, `CHANGELOG.md's releases: ${releases.join(", ")}`);
  });

  test("MIT licence everywhere", () => {
    assert.equal(pkg.license, "MIT");
    assert.equal(deno.license, "MIT");
    assert.match(read("LICENSE"), /^MIT License\n/);
  });
});

describe("entry points", () => {
  test("package.json and deno.json export the same entry points", () => {
    assert.deepEqual(Object.keys(pkg.exports).sort(), Object.keys(denoExports).sort());
  });

  test("each npm entry point is the compiled deno.json one, types first", () => {
    for (const [key, source] of Object.entries(denoExports)) {
      const conditions = pkg.exports[key]!;
      assert.equal(Object.keys(conditions)[0], "types", `"types" must come first in exports["${key}"]`);
      assert.deepEqual(conditions, { types: compiled(source, ".d.ts"), default: compiled(source, ".js") }, key);
      assert.ok(existsSync(join(root, source)), `${source} (deno.json exports["${key}"]) does not exist`);
    }
  });

  test("main, types and bin agree with exports", () => {
    assert.equal(pkg.type, "module");
    assert.equal(pkg.main, pkg.exports["."]!.default);
    assert.equal(pkg.types, pkg.exports["."]!.types);
    assert.deepEqual(Object.values(pkg.bin), [pkg.exports["./cli"]!.default]);
    assert.equal(Object.keys(pkg.bin)[0], pkg.name);
  });

  test("mod.ts exports no internals", () => {
    const names = Object.keys(mod);
    assert.ok(names.length > 0);
    assert.deepEqual(names.filter((n) => n.startsWith("_")), []);
  });
});

describe("package contents", () => {
  const covered = (files: string[], path: string): boolean =>
    files.some((f) => path === f || path.startsWith(f.replace(/\/?$/, "/")));

  test("npm: only compiled code, README and LICENSE, covering every entry point", () => {
    for (const file of pkg.files) {
      assert.match(file, /^(dist\/[\w/.-]*[^/]|README\.md|LICENSE)$/, `package.json files: ${file}`);
      assert.doesNotMatch(file, /\.ts$(?<!\.d\.ts)|test/, `package.json files: ${file}`);
    }
    const targets = [...Object.values(pkg.exports).flatMap((c) => Object.values(c)), ...Object.values(pkg.bin)];
    for (const target of targets) {
      assert.ok(covered(pkg.files, target.replace(/^\.\//, "")), `${target} is not in package.json "files"`);
    }
  });

  test("JSR: sources only, covering every entry point", () => {
    const allowed = ["mod.ts", "src/", "adapters/", "cli/", "README.md", "LICENSE", "deno.json"];
    for (const entry of deno.publish.include) assert.ok(allowed.includes(entry), `deno.json publish.include: ${entry}`);
    for (const source of Object.values(denoExports)) {
      assert.ok(covered(deno.publish.include, source.replace(/^\.\//, "")), `${source} is not published to JSR`);
    }
  });

  test("README.md has one generated support table", () => {
    const readme = read("README.md");
    assert.equal(readme.split("<!-- support-table:start -->").length, 2);
    assert.equal(readme.split("<!-- support-table:end -->").length, 2);
    assert.ok(readme.indexOf("<!-- support-table:start -->") < readme.indexOf("<!-- support-table:end -->"));
  });

  test("npm test runs the package checks", () => {
    for (const step of ["check", "check:package", "test:doc", "test:pack"]) {
      assert.ok(pkg.scripts.test!.split(" && ").includes(`npm run ${step}`), `npm test does not run ${step}`);
    }
    assert.match(pkg.scripts["test:pack"]!, /check:table/);
  });
});
