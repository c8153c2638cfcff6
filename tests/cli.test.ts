// The polybind command on this runtime: probe, serve with several workers, errors, shutdown.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { capabilities, createListener } from "../mod.ts";
import { adapter } from "../src/_adapter.ts";
import { parseCommand, UsageError } from "../cli/args.ts";
import { get, run } from "./_process.ts";
import { portOf, tempDir } from "./_helpers.ts";
import { socketActivated, stopActivated } from "./_cli.ts";

const T = { timeout: 90_000 };

/** Starts `polybind serve`, sends `n` requests, stops it, and returns the per-worker counts seen. */
async function serveAndCount(args: string[], n: number, where?: string) {
  const child = run("cli/polybind", ["serve", ...args]);
  try {
    const line = await child.line(/^polybind serve: listening on /, 60_000);
    const url = where ?? line.split(" ")[4]!;
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const res = await get(url);
      assert.equal(res.status, 200);
      const w = String(res.headers["x-polybind-worker"]);
      seen.set(w, (seen.get(w) ?? 0) + 1);
    }
    const code = await child.stop("SIGINT");
    assert.equal(code, 0, child.stderr.join(""));
    const reported = child.stdout.filter((l) => /^worker \d+ served \d+ requests$/.test(l));
    return { seen, reported, stdout: child.stdout, strategy: child.stdout.find((l) => l.startsWith("strategy:"))! };
  } finally {
    await child.stop();
  }
}

describe("polybind probe", () => {
  test("prints what this runtime supports", T, async () => {
    const child = run("cli/polybind", ["probe"]);
    assert.equal(await child.exited, 0);
    const caps = capabilities();
    assert.ok(child.stdout.some((l) => l.includes(`${caps.runtime} ${caps.version}`)), child.stdout.join("\n"));
    assert.ok(child.stdout.some((l) => /^SO_REUSEPORT \(TCP\)\s+(yes|no)$/.test(l)));
    assert.ok(child.stdout.some((l) => /^4 workers\s+(reuseport|shared|single): /.test(l)));
    const json = run("cli/polybind", ["probe", "--json"]);
    assert.equal(await json.exited, 0);
    assert.deepEqual(JSON.parse(json.stdout.join("\n")).capabilities, JSON.parse(JSON.stringify(caps)));
  });
});

describe("polybind serve", () => {
  test("--workers 2 answers from every worker it runs", T, async () => {
    const { seen, reported, strategy, stdout } = await serveAndCount(["--port", "0", "--workers", "2"], 300);
    const caps = capabilities();
    // On Linux always 2: Deno without --unstable-net starts worker processes with the flag.
    const workers = caps.reusePort.tcp || caps.processShare || caps.os === "linux" ? 2 : 1;
    // Threads where this process has Web Workers and each worker binds its own reuseport socket
    // (where this process can), or is lent one and the runtime copies descriptors into threads.
    const bindsOwn = strategy.startsWith("strategy: reuseport (") && caps.reusePort.tcp;
    const lentToThreads = strategy.startsWith("strategy: reuseport, lent") && adapter().share?.duplicate !== undefined;
    const threads = (bindsOwn || lentToThreads) && typeof globalThis.Worker === "function";
    assert.ok(stdout[0]!.includes(`with ${workers} worker(s) (${threads ? "threads" : "processes"})`), stdout[0]);
    assert.equal(seen.size, workers, `${strategy} ${JSON.stringify([...seen])}`);
    for (const [, count] of seen) assert.ok(count > 0);
    assert.equal(reported.length, workers);
    const total = reported.reduce((sum, l) => sum + Number(l.split(" ")[3]), 0);
    assert.equal(total, 300, reported.join("\n"));
  });

  test("--shared hands one socket to worker processes where the runtime can", T, async () => {
    const { seen, strategy } = await serveAndCount(["--port", "0", "--workers", "2", "--shared"], 200);
    if (capabilities().processShare) {
      assert.match(strategy, /strategy: shared/);
      assert.equal(seen.size, 2, JSON.stringify([...seen]));
    } else {
      assert.match(strategy, /strategy: single .*one accepting worker/);
      assert.equal(seen.size, 1);
    }
  });

  test("--uds serves on a Unix socket and removes it on shutdown", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "serve.sock");
      const { seen } = await serveAndCount(["--uds", path, "--workers", "2"], 50, `unix:${path}`);
      assert.equal([...seen.values()].reduce((a, b) => a + b, 0), 50);
      await assert.rejects(lstat(path), { code: "ENOENT" });
    } finally {
      await dir.cleanup();
    }
  });

  test("--listen, repeated: every address served by the workers", T, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, "l.sock");
      const child = run("cli/polybind", [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        `unix:${path}`,
        "--workers",
        "2",
      ]);
      try {
        const line = await child.line(/^polybind serve: listening on /, 60_000);
        const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)![0];
        assert.match(line, new RegExp(`unix:${path}`));
        for (const where of [url, `unix:${path}`]) {
          for (let i = 0; i < 10; i++) assert.equal((await get(where)).status, 200);
        }
        assert.equal(await child.stop("SIGINT"), 0);
        assert.ok(child.stdout.includes("total 20 requests"), child.stdout.join("\n"));
      } finally {
        await child.stop();
      }
    } finally {
      await dir.cleanup();
    }
  });

  test("a SIGINT while workers start stops them too: none is left holding the output", T, async () => {
    for (const delayMs of [150, 400]) {
      // run() resolves `exited` on 'close': once every process holding the pipes has exited.
      const child = run("cli/polybind", ["serve", "--port", "0", "--workers", "2"]);
      await new Promise((r) => setTimeout(r, delayMs));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve("still open"), 20_000)));
      const outcome = await Promise.race([child.stop("SIGINT"), timeout]);
      clearTimeout(timer);
      assert.notEqual(outcome, "still open", `after ${delayMs} ms`);
    }
  });

  test("--listen sd-listen serves the socket systemd passed", T, async () => {
    const free = await createListener({ port: 0 });
    const port = portOf(free);
    await free.close();
    const child = await socketActivated(`127.0.0.1:${port}`, ["--listen", "sd-listen", "--workers", "2"]);
    try {
      // The first connection starts polybind (systemd-socket-activate execs on it); count once
      // every worker is ready, or the first could serve them all.
      const seen = new Set<string>();
      seen.add(String((await get(`http://127.0.0.1:${port}`)).headers["x-polybind-worker"]));
      await child.line(/^polybind serve: listening on /, 10_000);
      for (let i = 0; i < 40; i++) {
        seen.add(String((await get(`http://127.0.0.1:${port}`)).headers["x-polybind-worker"]));
      }
      assert.equal(seen.size, capabilities().processShare ? 2 : 1, child.stdout.join("\n") + child.stderr.join(""));
    } finally {
      await stopActivated(child);
    }
  });

  test("bad arguments: a one-line message, the usage, exit code 2", T, async () => {
    for (
      const args of [["serve", "--port", "http"], ["serve", "--workers", "0"], ["serve", "--bogus"], ["nope"], [], [
        "serve",
        "--listen",
        "nonsense",
      ]]
    ) {
      const child = run("cli/polybind", args);
      assert.equal(await child.exited, 2, args.join(" "));
      const err = child.stderr.join("");
      assert.match(err, /^polybind: .+\nUsage:/, err);
    }
  });

  test("a value that starts with a dash: a negative number is checked as the value, an option is named", () => {
    const usage = (args: string[], message: RegExp) =>
      assert.throws(
        () => parseCommand(["serve", ...args]),
        (e: Error) => e instanceof UsageError && message.test(e.message),
      );
    usage(["--grace-ms", "-5"], /^--grace-ms must be an integer from 0 to 3600000: got "-5"$/);
    usage(["--port", "-1", "--workers", "2"], /^--port must be an integer from 0 to 65535: got "-1"$/);
    usage(["--workers", "-2"], /^--workers must be an integer from 1 to 1024: got "-2"$/);
    usage(
      ["--listen", "--workers", "2"],
      /^--listen needs a value, not the option "--workers" \(write --listen=--workers if that is the value\)$/,
    );
    usage(["--listen", ":8000", "--listen", "--shared"], /^--listen needs a value, not the option "--shared" /);
    usage(["--uds", "-x"], /^--uds needs a value, not the option "-x" \(write --uds=-x if that is the value\)$/);
    assert.equal((parseCommand(["serve", "--uds=-x"]) as { uds?: string }).uds, "-x");
    // After "--", everything is APP: one at most.
    usage(["--", "--port", "-1"], /^One APP at most: got \["--port","-1"\]$/);
  });

  test("a port in use: the actionable message, exit code 1", T, async () => {
    await using taken = await createListener({ port: 0 });
    const child = run("cli/polybind", ["serve", "--port", String(portOf(taken)), "--workers", "2"]);
    assert.equal(await child.exited, 1);
    assert.match(child.stderr.join(""), /is already in use\. Is another server running\?/);
  });
});
