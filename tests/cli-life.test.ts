// The command over its life, run as a real child process: the addresses it prints, the deno
// tasks and `npm start` of a checkout, the signals it handles (SIGHUP, a second SIGINT while it
// stops) and its workers leaving quietly when the primary is killed.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { lstat } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import process from "node:process";
import { capabilities, createListener } from "../mod.ts";
import { get, projectFile, run } from "./_process.ts";
import { portOf, tempDir } from "./_helpers.ts";
import {
  childrenOf,
  descendantsOf,
  projectRoot,
  running,
  signal,
  socketActivated,
  start,
  stopActivated,
  waitFor,
} from "./_cli.ts";
import { within } from "./_helpers.ts";

const T = { timeout: 90_000 };
// Deno's node:child_process reports the signal it sent even when the child handled it and exited
// with 0 (see tests/_process.ts): there the exit code of a signalled child says nothing.
const denoParent = (globalThis as { Deno?: unknown }).Deno !== undefined;

/** Starts `polybind serve` with `args`; resolves once it listens, with the line saying where. */
async function serve(args: string[]) {
  const child = run("cli/polybind", ["serve", ...args]);
  const line = await child.line(/^polybind serve: listening on /, 60_000);
  return { child, line };
}

describe("polybind serve prints addresses as URLs", () => {
  test("IPv6 in brackets, for the workers' addresses", T, async () => {
    const { child, line } = await serve(["--listen", "[::1]:0", "--workers", "2"]);
    try {
      const url = /http:\/\/\[::1\]:\d+/.exec(line)?.[0];
      assert.ok(url, line);
      assert.equal((await get(url)).status, 200);
    } finally {
      await child.stop("SIGINT");
    }
  });

  test("IPv6 in brackets, for an inherited socket", T, async () => {
    const free = await createListener({ host: "::1", port: 0 });
    const port = portOf(free);
    await free.close();
    // One worker: a thread adopts the inherited socket (Deno, Bun), or the primary lends it (Node.js).
    const child = await socketActivated(`[::1]:${port}`, ["--listen", "sd-listen", "--workers", "1"]);
    try {
      const response = get(`http://[::1]:${port}`);
      const line = await Promise.race([child.line(/^polybind serve: listening on /), child.exited.then(() => "")]);
      // Deno has no API to adopt a descriptor (yet): the command says so and exits.
      if (line === "" && capabilities().runtime === "deno") {
        assert.match(child.stderr.join(""), /inherited descriptor/);
        await response.catch(() => {});
        return;
      }
      assert.ok(line.includes(`http://[::1]:${port}`), line);
      assert.ok(!line.includes("http://::1"), line);
      assert.equal((await response).status, 200);
    } finally {
      await stopActivated(child);
    }
  });
});

/** GET asking to keep the connection alive (node:http then names its timeout), closed once answered. */
function getKeptAlive(port: number): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/", agent: false, headers: { connection: "keep-alive" } },
      (res) => {
        res.resume();
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("an inherited socket lent to worker processes", () => {
  test("2 workers serve a systemd socket, with the runtime's own server where it adopts one", T, async () => {
    if (!capabilities().processShare) return;
    const free = await createListener({ host: "127.0.0.1", port: 0 });
    const port = portOf(free);
    await free.close();
    const args = ["--listen", "sd-listen", "--workers", "2", "--worker-header"];
    const child = await socketActivated(`127.0.0.1:${port}`, args);
    try {
      const url = `http://127.0.0.1:${port}`;
      const first = getKeptAlive(port);
      const line = await child.line(/^polybind serve: listening on /, 60_000);
      // Where the sockets are bound, read from them: the workers were not told an address.
      assert.ok(line.includes(url), line);
      const seen = new Set<unknown>();
      for (let i = 0; i < 200 && seen.size < 2; i++) {
        const res = await (i === 0 ? first : getKeptAlive(port));
        assert.equal(res.status, 200);
        seen.add(res.headers["x-polybind-worker"]);
        // node:http names its keep-alive timeout; Deno.serve and Bun.serve (adopting on Linux) do not.
        const own = capabilities().runtime !== "node" && capabilities().os === "linux";
        assert.equal(res.headers["keep-alive"] === undefined, own, JSON.stringify(res.headers));
      }
      assert.deepEqual([...seen].sort(), ["1.0", "1.1"]);
    } finally {
      await stopActivated(child);
    }
  });
});

describe("deno tasks and npm start in a checkout", () => {
  const root = projectRoot();
  const deno = join(root, "node_modules", ".bin", "deno");

  const installed = existsSync(deno) || "no node_modules/.bin/deno: run npm install";
  test("deno task probe and deno task serve run with node_modules installed", {
    ...T,
    skip: installed !== true && installed,
  }, async () => {
    const probe = start(deno, ["task", "probe"], { cwd: root });
    assert.equal(await within(probe.exited, "deno task probe", 60_000), 0, probe.stderr.join(""));
    assert.ok(probe.stdout.some((l) => /^SO_REUSEPORT \(TCP\)\s+(yes|no)$/.test(l)), probe.stdout.join("\n"));

    const served = start(deno, ["task", "serve", "--port", "0", "--workers", "1"], { cwd: root });
    let started: number[] = [];
    try {
      const line = await served.line(/^polybind serve: listening on /, 60_000);
      started = descendantsOf(served.process.pid!);
      assert.equal((await get(line.split(" ")[4]!)).status, 200);
    } finally {
      // deno task passes the signal on to the command it runs.
      served.process.kill("SIGTERM");
      await within(served.exited, "the end of deno task serve", 20_000).finally(() => {
        for (const pid of started) signal(pid, "SIGKILL");
      });
    }
    assert.ok(served.stdout.includes("total 1 requests"), served.stdout.join("\n"));
  });

  test("npm start builds only when dist/ is missing or older than the sources", T, async () => {
    const dir = await tempDir();
    try {
      for (const path of ["mod.ts", "tsconfig.json", "src", "adapters", "cli", "scripts"]) {
        cpSync(join(root, path), join(dir.path, path), { recursive: true });
      }
      // The copy's build writes a stand-in command that says it was built; a kept one says "kept".
      const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
      pkg.scripts.build = "node build-stand-in.mjs";
      writeFileSync(join(dir.path, "package.json"), JSON.stringify(pkg));
      const cli = join(dir.path, "dist", "cli", "polybind.js");
      const say = (word: string) => `console.log(${JSON.stringify(word)}, process.argv.slice(2).join(" "));\n`;
      writeFileSync(
        join(dir.path, "build-stand-in.mjs"),
        `import { mkdirSync, writeFileSync } from "node:fs";\nmkdirSync("dist/cli", { recursive: true });\n` +
          `writeFileSync(${JSON.stringify(cli)}, ${JSON.stringify(say("built"))});\n`,
      );
      // npm's variables of an npm run that started this test would point the child npm elsewhere.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
      const npmStart = async () => {
        const npm = start("npm", ["start", "--silent", "--", "--port", "0"], { cwd: dir.path, env });
        assert.equal(await within(npm.exited, "npm start", 60_000), 0, npm.stderr.join(""));
        return npm.stdout.filter((l) => /^(built|kept) /.test(l)).join("\n");
      };
      const later = (file: string, seconds: number) => {
        const when = new Date(Date.now() + seconds * 1000);
        utimesSync(file, when, when);
      };

      assert.equal(await npmStart(), "built serve --port 0", "no dist/: built");
      writeFileSync(cli, say("kept"));
      later(cli, 60);
      assert.equal(await npmStart(), "kept serve --port 0", "dist/ newer than every source: not built again");
      later(join(dir.path, "src", "types.ts"), 120);
      assert.equal(await npmStart(), "built serve --port 0", "a source changed since: built");
    } finally {
      await dir.cleanup();
    }
  });
});

describe("polybind serve's signals", () => {
  test(
    "SIGHUP reloads on the same Unix socket: generation 2 serves, the first leaves; SIGTERM then stops cleanly",
    T,
    async () => {
      const dir = await tempDir();
      const path = join(dir.path, "hup.sock");
      const { child } = await serve(["--uds", path, "--workers", "2", "--worker-header"]);
      const first = childrenOf(child.process.pid!);
      try {
        for (let i = 0; i < 5; i++) {
          assert.equal(
            String((await get(`unix:${path}`)).headers["x-polybind-worker"])[0],
            "1",
          );
        }
        // process.kill: Deno's ChildProcess.kill() sends only the first signal of a child's life.
        signal(child.process.pid!, "SIGHUP");
        await child.line(/^polybind serve: generation 2 serves/, 30_000);
        // The first generation stops accepting as it is told to drain, and its processes leave.
        assert.ok(await waitFor(() => first.every((pid) => !running(pid)), 20_000), "the first generation left");
        for (let i = 0; i < 5; i++) {
          assert.equal(
            String((await get(`unix:${path}`)).headers["x-polybind-worker"])[0],
            "2",
          );
        }
        signal(child.process.pid!, "SIGTERM");
        const code = await within(child.exited, "the end after SIGTERM", 20_000);
        if (!denoParent) assert.equal(code, 0, child.stderr.join(""));
        assert.ok(child.stdout.includes("total 10 requests"), child.stdout.join("\n"));
        assert.equal(child.stderr.join(""), "");
        await assert.rejects(lstat(path), { code: "ENOENT" });
      } finally {
        for (const pid of first) signal(pid, "SIGKILL");
        await child.stop();
        await dir.cleanup();
      }
    },
  );

  test("a second SIGINT while it stops ends the workers at once, still cleaning up", T, async () => {
    const dir = await tempDir();
    const path = join(dir.path, "int.sock");
    // A request that takes a minute keeps the first stop draining (grace: a minute too), so the
    // primary is still stopping when the second SIGINT comes.
    const { child } = await serve([
      projectFile("tests/fixtures/life_app"),
      "--uds",
      path,
      "--workers",
      "2",
      "--grace-ms",
      "60000",
    ]);
    const workers = childrenOf(child.process.pid!);
    const hang = new Promise<string>((resolve) => {
      const req = request({ socketPath: path, path: "/hang", agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve("answered"));
        res.on("error", () => resolve("cut"));
      });
      req.on("error", () => resolve("cut"));
      req.end();
    });
    try {
      assert.ok(await waitFor(() => child.stdout.some((l) => l.includes("hang request started")), 10_000));
      signal(child.process.pid!, "SIGINT");
      await child.line(/^polybind serve: SIGINT: stopping$/, 10_000);
      const second = Date.now();
      signal(child.process.pid!, "SIGINT");
      const code = await within(child.exited, "the end after the second SIGINT", 20_000);
      assert.ok(Date.now() - second < 2_000, `${Date.now() - second} ms`);
      if (!denoParent) assert.equal(code, 0, child.stderr.join(""));
      assert.equal(await hang, "cut");
      assert.ok(child.stdout.some((l) => /at once/.test(l)), child.stdout.join("\n"));
      assert.ok(child.stdout.some((l) => /^worker \d did not report$/.test(l)), child.stdout.join("\n"));
      assert.equal(child.stderr.join(""), "");
      assert.deepEqual(workers.filter(running), []);
      await assert.rejects(lstat(path), { code: "ENOENT" });
    } finally {
      for (const pid of workers) signal(pid, "SIGKILL");
      await child.stop();
      await dir.cleanup();
    }
  });
});

describe("polybind serve whose output nobody reads any more", () => {
  test("stops on SIGTERM with 0 and no stack trace (as after `polybind serve | head -1`)", T, async () => {
    const { child } = await serve(["--port", "0", "--workers", "2"]);
    try {
      // The reader goes: what the command prints on its way out meets a closed pipe (EPIPE).
      child.process.stdout!.destroy();
      signal(child.process.pid!, "SIGTERM");
      const code = await within(child.exited, "the end after SIGTERM", 20_000);
      if (!denoParent) assert.equal(code, 0, child.stderr.join(""));
      assert.equal(child.stderr.join(""), "");
    } finally {
      await child.stop();
    }
  });
});

describe("polybind serve's workers when the primary is killed", () => {
  for (const args of [["--workers", "2"], ["--workers", "2", "--shared"]]) {
    test(`they leave quietly within a second (${args.join(" ")})`, T, async () => {
      const { child, line } = await serve(["--port", "0", ...args]);
      const workers = childrenOf(child.process.pid!);
      try {
        // Threads die with their process; processes where sockets are lent to them (Node.js, Deno;
        // Bun with --shared), or where only a new process binds SO_REUSEPORT (Deno without --unstable-net).
        if (line.includes("(processes)")) assert.ok(workers.length > 0, "worker processes");
        child.process.kill("SIGKILL");
        const gone = await waitFor(() => workers.every((pid) => !running(pid)), 1_000);
        assert.ok(gone, `still running a second after: ${workers.filter(running).join(", ")}`);
        await within(child.exited, "the end of the output", 5_000);
        assert.equal(child.stderr.join(""), "");
      } finally {
        for (const pid of workers) signal(pid, "SIGKILL");
        await child.stop();
      }
    });
  }
});
