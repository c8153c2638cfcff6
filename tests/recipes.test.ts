// The README's recipes (examples/recipes/), run as a newcomer runs them: each primary started on
// this runtime with PORT, answering real requests on its workers, and ending with 0 on SIGTERM
// with its workers gone and its port free. And the README shows each file as it is.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { capabilities, createListener } from "../mod.ts";
import { portOf, within } from "./_helpers.ts";
import { get } from "./_process.ts";
import { runtimeCommand } from "./_runtime_command.ts";
import { descendantsOf, projectRoot, running, signal, start, waitFor } from "./_cli.ts";

const T = { timeout: 90_000 };
const REQUESTS = 20;
const node = capabilities().runtime === "node";

interface Recipe {
  /** The primary, in examples/recipes/. */
  file: string;
  /** What its app answers on `/`. */
  body: string;
  /** Why it does not run on this runtime, if it does not. */
  skip?: string;
}

const RECIPES: Recipe[] = [
  {
    file: "hono.ts",
    body: "Hello from Hono\n",
    ...(node ? { skip: "Node.js 20 runs no TypeScript: hono.js, its twin, runs there" } : {}),
  },
  { file: "hono.js", body: "Hello from Hono\n" },
  { file: "h3.js", body: "Hello from h3\n" },
  { file: "fastify.js", body: "Hello from Fastify\n" },
  { file: "express.js", body: "Hello from Express\n" },
];

/** A port nobody holds right now: bound on port 0, then closed. */
async function freePort(): Promise<number> {
  const listener = await createListener({ host: "127.0.0.1", port: 0 });
  const port = portOf(listener);
  await listener.close();
  return port;
}

/** Whether nobody holds 127.0.0.1:`port`: a plain bind (no SO_REUSEPORT) succeeds. */
async function portIsFree(port: number): Promise<boolean> {
  try {
    const listener = await createListener({ host: "127.0.0.1", port });
    await listener.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the recipe's primary on this runtime, under a shell that says its pid and its exit
 * code: Deno's node:child_process reports a signal it sent as the way a child ended even when the
 * child handled it and exited with 0 (see tests/_process.ts), so the shell tells the real code.
 */
function startRecipe(file: string, port: number) {
  // Sources on Deno and Bun, the build (where tsc copies the .js recipes) on Node.
  const path = fileURLToPath(new URL(`../examples/recipes/${file}`, import.meta.url));
  const [command, args] = runtimeCommand(path);
  const script = `"$@" & echo "recipe pid $!"; wait $!; echo "recipe exited with $?"`;
  return start("sh", ["-c", script, "sh", command, ...args], { env: { ...process.env, PORT: String(port) } });
}

describe("the README's recipes serve on 2 workers", () => {
  for (const recipe of RECIPES) {
    test(`${recipe.file}: real requests, then SIGTERM ends it with 0 and frees the port`, {
      ...T,
      skip: recipe.skip ?? false,
    }, async () => {
      const port = await freePort();
      const child = startRecipe(recipe.file, port);
      const pid = Number(/\d+/.exec(await child.line(/^recipe pid \d+$/))![0]);
      let workers: number[] = [];
      try {
        // supervise() resolves once every worker serves: the line comes after, so no retry is needed.
        assert.equal(await child.line(/^listening on /, 60_000), `listening on http://127.0.0.1:${port}`);
        workers = descendantsOf(pid);
        const responses = await Promise.all(
          Array.from({ length: REQUESTS }, () => within(get(`http://127.0.0.1:${port}/`), "a response", 10_000)),
        );
        for (const response of responses) {
          assert.equal(response.status, 200);
          assert.equal(response.body, recipe.body);
        }
        signal(pid, "SIGTERM");
        assert.equal(await child.line(/^recipe exited with /, 30_000), "recipe exited with 0");
        assert.equal(await within(child.exited, "the shell's end", 5_000), 0);
        assert.deepEqual(workers.filter(running), [], "every worker has ended with the primary");
        assert.ok(await portIsFree(port), `port ${port} is free once the primary has ended`);
      } finally {
        // A failed test leaves nothing running: the primary first (its workers then leave), then any worker left.
        if (running(pid)) signal(pid, "SIGKILL");
        await within(child.exited, "the shell's end", 10_000);
        for (const worker of workers) if (running(worker)) signal(worker, "SIGKILL");
        await waitFor(() => !workers.some(running), 5_000);
      }
    });
  }
});

/** The ts and js code blocks of the README section that shows the recipes, by the file named on their first line. */
function readmeBlocks(): Map<string, string> {
  const readme = readFileSync(join(projectRoot(), "README.md"), "utf8");
  const start = readme.indexOf("\n## Serving an app on N workers\n");
  assert.ok(start >= 0, "the README has a section 'Serving an app on N workers'");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks = new Map<string, string>();
  for (const [, code] of section.matchAll(/```(?:ts|js)\n([\s\S]*?)```/g)) {
    const name = /^\/\/ ([\w.]+):/.exec(code!)?.[1];
    if (name !== undefined) blocks.set(name, code!);
  }
  return blocks;
}

describe("the README shows the recipes as they are", () => {
  const dir = join(projectRoot(), "examples", "recipes");
  const source = (name: string) => readFileSync(join(dir, name), "utf8");

  test('each block equals its file, with the import from "polybind"', () => {
    const blocks = readmeBlocks();
    assert.ok(blocks.size >= 6, `recipe blocks found: ${[...blocks.keys()].join(", ")}`);
    for (const [name, code] of blocks) {
      assert.equal(code, source(name).replace(`from "../../mod.ts"`, `from "polybind"`), `README block of ${name}`);
    }
  });

  test("every recipe is shown, or is the .js twin of a .ts one that is", () => {
    const blocks = readmeBlocks();
    for (const name of readdirSync(dir)) {
      if (blocks.has(name)) continue;
      const twin = name.replace(/\.js$/, ".ts");
      assert.ok(twin !== name && blocks.has(twin), `${name} is shown in the README, or ${twin} is`);
      // Below the comment that names the file, the twin differs only in the modules it names.
      const code = (text: string) => text.split("\n").slice(1).join("\n").replaceAll(/(\w)\.ts"/g, `$1.js"`);
      assert.equal(code(source(name)), code(source(twin)), name);
    }
  });
});
