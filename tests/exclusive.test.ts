// A busy address stays busy: a reuseport group, a plan or `polybind serve` fails with EADDRINUSE
// when anyone holds the address, reuseport or not, and joins only when asked to.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  capabilities,
  createListener,
  createListeners,
  createUdpListeners,
  type Listener,
  ListenError,
  planListeners,
  preparePlan,
} from "../mod.ts";
import { exchange, portOf, serveUpper } from "./_helpers.ts";
import { run } from "./_process.ts";

const T = { timeout: 60_000 };

function inUse(err: unknown): boolean {
  return err instanceof ListenError && err.code === "EADDRINUSE";
}

async function closeAll(listeners: { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(listeners.map((l) => l.close()));
}

describe("a busy address", () => {
  test("a reuseport group cannot join another group on its port", T, async () => {
    const first = await createListeners({ port: 0 }, 2);
    try {
      const port = portOf(first[0]!);
      await assert.rejects(createListeners({ port }, 2), inUse);
      await assert.rejects(createListeners({ port }, 2, { shared: true }), inUse);
      await assert.rejects(createListener({ port }), inUse);
    } finally {
      await closeAll(first);
    }
  });

  test("join: true joins a reuseport group on purpose, and both sides serve", T, async () => {
    const first = await createListeners({ port: 0 }, 2);
    const port = portOf(first[0]!);
    const joined: Listener[] = [];
    try {
      if (!capabilities().reusePort.tcp) {
        await assert.rejects(createListeners({ port }, 2, { join: true }), inUse);
        return;
      }
      joined.push(...await createListeners({ port }, 2, { join: true }));
      assert.equal(portOf(joined[0]!), port);
      // Close the first group: the joined one goes on serving the port.
      await closeAll(first.splice(0));
      void serveUpper(joined[0]!);
      void serveUpper(joined[1]!);
      assert.equal(await exchange(port, "still here"), "STILL HERE");
    } finally {
      await closeAll([...first, ...joined]);
    }
  });

  test("join must be a boolean", () => {
    assert.throws(() => planListeners({ port: 0 }, 2, { join: "yes" as unknown as boolean }), TypeError);
    return assert.rejects(
      createListeners({ port: 0 }, 2, { join: 1 as unknown as boolean }),
      /'join' must be a boolean/,
    );
  });

  test("a UDP reuseport group cannot join another on its port", T, async () => {
    if (!capabilities().udp) return;
    const first = await createUdpListeners({ port: 0 }, 2);
    try {
      await assert.rejects(createUdpListeners({ port: first[0]!.addr.port }, 2), inUse);
    } finally {
      await closeAll(first);
    }
  });

  test("a plan cannot be prepared on a port a reuseport group holds", T, async () => {
    const first = await createListeners({ port: 0 }, 2);
    try {
      const port = portOf(first[0]!);
      await assert.rejects(preparePlan(planListeners({ port }, 2)), inUse);
      if (capabilities().reusePort.tcp) {
        const joined = await preparePlan(planListeners({ port }, 2, { join: true }));
        await joined.close();
      }
    } finally {
      await closeAll(first);
    }
  });

  test("a second polybind serve on a busy port exits with 1 and says why", T, async () => {
    const first = await createListeners({ port: 0 }, 2);
    try {
      const port = portOf(first[0]!);
      const child = run("cli/polybind", ["serve", "--port", String(port), "--workers", "2"]);
      try {
        assert.equal(await child.exited, 1, child.stdout.join("\n"));
        assert.match(child.stderr.join(""), new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
      } finally {
        await child.stop();
      }
    } finally {
      await closeAll(first);
    }
  });
});
