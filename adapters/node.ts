// The Node.js adapter: node:net servers and sockets, node:dgram for UDP.

import process from "node:process";
import type { Adapter } from "../src/_adapter.ts";
import { listenDgram } from "./_dgram.ts";
import { nodeShare } from "./_node_share.ts";
import { acceptQueue, listenNet, listenNodeFd } from "./_node_net.ts";
import { reusePortBindsHere, reusePortBindsInChild } from "./_reuseport_probe.ts";
import { platform } from "./_posix.ts";

const probed = new Map<"tcp" | "udp", boolean>();

/** The Node.js adapter. */
export const nodeAdapter: Adapter = {
  runtime: "node",
  version: process.versions.node,
  os: process.platform,
  async listenTcp({ hostname, port, backlog, reusePort }) {
    const server = await listenNet({ host: hostname, port, backlog, ...(reusePort ? { reusePort } : {}) });
    const a = server.address() as { address: string; port: number };
    return acceptQueue(server, { transport: "tcp", hostname: a.address, port: a.port });
  },
  async listenUnix({ path, backlog }) {
    const server = await listenNet({ path, backlog });
    return acceptQueue(server, { transport: "unix", path });
  },
  listenUdp: listenDgram,
  listenFd: listenNodeFd,
  platform,
  probeReusePort: reusePortBindsHere,
  reusePortBinds(transport) {
    if (!probed.has(transport)) probed.set(transport, reusePortBindsInChild(transport));
    return probed.get(transport)!;
  },
  udp: true,
  unix: process.platform !== "win32",
  backlog: true,
  missing: (feature) =>
    feature === "udp"
      ? "UDP is always available on Node.js"
      : `Node.js ${process.versions.node} ignores reusePort (it needs 22.12 or 23.1 and later)`,
  serveKeys: { host: "host", path: "path" },
  share: nodeShare,
  // Without this process's --inspect, whose port the workers would fight for.
  workerProcess: {
    command: () => [process.execPath, process.execArgv.filter((arg) => !arg.startsWith("--inspect"))],
    reusePort: false,
    ipc: true,
    sharedAcceptEnv: { UV_TCP_SINGLE_ACCEPT: "1" },
  },
};
