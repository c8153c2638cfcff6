// No polybind call holds the event loop: a server that binds while it serves other traffic
// does not stall (the capability probe binds asynchronously, in this process).

import { test } from "node:test";
import assert from "node:assert/strict";
import { capabilities, probeCapabilities } from "../mod.ts";
import { run } from "./_process.ts";

test("the first multi-socket binds of a fresh process hold the event loop for milliseconds at most", {
  timeout: 60_000,
}, async () => {
  const child = run("tests/fixtures/event_loop_gap");
  try {
    const line = await child.line(/^gap /);
    assert.equal(await child.exited, 0, child.stderr.join(""));
    // The probe in a child process held it for about 150 ms a transport; binding takes ~1 ms.
    assert.ok(Number(line.split(" ")[1]) < 60, line);
  } finally {
    await child.stop();
  }
});

test("probeCapabilities and capabilities agree", async () => {
  assert.equal(await probeCapabilities(), capabilities());
});
