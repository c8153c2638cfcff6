// ServerConfig.proxyProtocol: every way of listening reads the PROXY header when the config says
// so: createListener(s), pairs (TCP side), plans and their workers; UDP and serveTargets refuse.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  capabilities,
  createListener,
  createListenerPair,
  createListeners,
  createUdpListener,
  type Listener,
  listenFromPlan,
  planListeners,
  preparePlan,
  serveTargets,
} from "../mod.ts";
import { type Seen, serveSeen, talk, tcpHeader } from "./_proxy_net.ts";

const T = { timeout: 30_000 };
const trusted = { trusted: ["127.0.0.1"] };

/** Sends a v2 header then a line through `listener`, and returns what the server saw. */
async function through(listener: Listener): Promise<Seen> {
  const served: Seen[] = [];
  const serving = serveSeen(listener, served);
  try {
    const port = listener.addr.transport === "tcp" ? listener.addr.port : 0;
    const { reply } = talk(port, [tcpHeader(2), "hello\n"]);
    return JSON.parse(await reply) as Seen;
  } finally {
    await listener.close();
    await serving;
  }
}

function fromHeader(seen: Seen): void {
  assert.deepEqual(seen.remote, { transport: "tcp", hostname: "203.0.113.7", port: 51000 });
  assert.deepEqual(seen.local, { transport: "tcp", hostname: "192.0.2.1", port: 443 });
  assert.equal(seen.proxy?.version, 2);
  assert.equal(seen.first, "hello\n");
}

describe("ServerConfig.proxyProtocol", () => {
  test("createListener reads the header", T, async () => {
    fromHeader(await through(await createListener({ port: 0, proxyProtocol: trusted })));
    fromHeader(await through(await createListener({ port: 0, proxyProtocol: true })));
  });

  test("every listener of createListeners reads it", T, async () => {
    const listeners = await createListeners({ port: 0, proxyProtocol: true }, 2, { shared: true });
    fromHeader(await through(listeners[0]!));
    fromHeader(await through(listeners[1]!));
  });

  test("a pair reads it on TCP", T, async () => {
    if (!capabilities().udp) return;
    const { tcp, udp } = await createListenerPair({ port: 0, proxyProtocol: true });
    await udp.close();
    fromHeader(await through(tcp));
  });

  test("a plan carries it to its workers, and has no serve targets", T, async () => {
    const prepared = await preparePlan(planListeners({ port: 0, proxyProtocol: trusted }, 1));
    try {
      assert.deepEqual(JSON.parse(JSON.stringify(prepared.plan)).proxyProtocol, trusted);
      await prepared.release();
      await assert.rejects(serveTargets(prepared.plan, 0), /runtime's server reads the socket itself/);
      fromHeader(await through(await listenFromPlan(prepared.plan, 0)));
    } finally {
      await prepared.close();
    }
  });

  test("UDP refuses it; bad options are named", async () => {
    await assert.rejects(createUdpListener({ port: 0, proxyProtocol: true }), TypeError);
    await assert.rejects(
      createListener({ port: 0, proxyProtocol: { timeoutMs: 0 } }),
      (err) => err instanceof RangeError && /'proxyProtocol\.timeoutMs'/.test(err.message),
    );
    assert.throws(() => planListeners({ port: 0, proxyProtocol: { trusted: ["nope"] } }, 2), RangeError);
  });
});
