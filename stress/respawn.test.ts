// Workers replaced under a tight loop of fresh connections: `polybind serve` with 2 workers, a
// request that makes one throw where nothing catches it, 8 times, each followed by 2.5 s of
// requests one after the other. Where the primary lends its sockets (the default on Linux while
// net.ipv4.tcp_migrate_req=0, every runtime), a replaced worker closes nothing the kernel routes
// connections to: 0 failures. Where each worker binds its own SO_REUSEPORT socket, the replaced
// worker's socket closes, and Linux resets the connections waiting in its queue unless
// net.ipv4.tcp_migrate_req=1: the figure says how many.

import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { projectFile, run } from "../tests/_process.ts";
import { within } from "../tests/_helpers.ts";
import { waitFor } from "../tests/_cli.ts";
import { figure, migrateReq } from "./_serve.ts";

const CRASHES = 8;

function attempt(port: number, path = "/"): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200 ? "ok" : `status ${res.statusCode}`));
      res.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

test(`${CRASHES} workers replaced under a tight loop of fresh connections`, { timeout: 120_000 }, async () => {
  const app = projectFile("tests/fixtures/life_app");
  const child = run("cli/polybind", ["serve", app, "--port", "0", "--workers", "2"]);
  try {
    const line = await child.line(/^polybind serve: listening on /, 60_000);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(line)![1]);
    const lent = /^strategy: (shared|reuseport, lent) /.test(await child.line(/^strategy: /, 10_000));
    const failures = new Map<string, number>();
    let total = 0;
    for (let c = 0; c < CRASHES; c++) {
      await attempt(port, "/crash");
      for (const until = Date.now() + 2_500; Date.now() < until; total++) {
        const r = await attempt(port);
        if (r !== "ok") failures.set(r, (failures.get(r) ?? 0) + 1);
      }
      // The next crash is asked of a worker that serves: a replaced one drains, and one whose
      // replacement is still starting has faulted already (neither is started again).
      const back = await waitFor(() => child.stdout.filter((l) => /serves again/.test(l)).length === c + 1, 10_000);
      assert.ok(back, `crash ${c + 1}: ${child.stdout.join("\n")} ${child.stderr.join("")}`);
    }
    const respawns = child.stderr.join("").match(/starting it again/g)?.length ?? 0;
    const failed = [...failures.values()].reduce((a, b) => a + b, 0);
    figure(
      `respawn: ${CRASHES} workers replaced (${
        lent ? "lent sockets" : "own reuseport sockets"
      }, tcp_migrate_req ${migrateReq()}): ` +
        `${total} requests, ${failed} failed ${JSON.stringify(Object.fromEntries(failures))}`,
    );
    assert.equal(respawns, CRASHES, child.stderr.join(""));
    if (lent) assert.equal(failed, 0);
    // Only resets of connections queued on a closing socket, and few of them.
    else assert.deepEqual([...failures.keys()].filter((k) => k !== "ECONNRESET"), []);
  } finally {
    await within(child.stop("SIGTERM"), "the command's exit", 20_000);
  }
});
