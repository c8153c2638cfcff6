// Lending a socket from a Node.js parent to its child processes over IPC, the way node:cluster
// shares handles: the parent binds without listening (so it accepts nothing itself), each child
// asks for the handle by key and listens on it.

import type { ChildProcess } from "node:child_process";
import * as net from "node:net";
import process from "node:process";
import { getSystemErrorName } from "node:util";
import type { ShareableSocket, SocketShare } from "../src/_adapter.ts";
import type { Addr } from "../src/types.ts";
import { acceptQueue } from "./_node_net.ts";

/** A bound, not listening, libuv handle (TCP or Pipe). */
interface Handle {
  getsockname?(out: Record<string, unknown>): number;
  close(cb?: () => void): void;
}

/** node:net's own handle factory, which node:cluster uses for the same purpose. */
type CreateServerHandle = (
  address: string | null,
  port: number | null,
  addressType: number | null,
  fd?: number | null,
  flags?: number,
) => Handle | number;

function systemError(errno: number): Error {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`bind ${code}`), { code, errno, syscall: "bind" });
}

/** Whether this runtime's node:net makes bound, not listening handles (Node.js, Deno 2). */
export function nodeShareWorks(): boolean {
  return typeof (net as unknown as { _createServerHandle?: unknown })._createServerHandle === "function";
}

let reusePortFlag: number | null | undefined = null;

/**
 * The bind flag that sets SO_REUSEPORT on a handle, where this runtime's node:net has one
 * (libuv's UV_TCP_REUSEPORT: Node.js 22.12 and 23.1 on, and Deno, by its own number); read once.
 */
function reusePortBindFlag(): number | undefined {
  if (reusePortFlag !== null) return reusePortFlag;
  try {
    const binding = (process as unknown as { binding?(name: string): { constants?: Record<string, unknown> } }).binding;
    const flag = binding?.("tcp_wrap").constants?.UV_TCP_REUSEPORT;
    reusePortFlag = typeof flag === "number" && flag > 0 ? flag : undefined;
  } catch {
    reusePortFlag = undefined;
  }
  return reusePortFlag;
}

function createHandle(...args: Parameters<CreateServerHandle>): Handle {
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof create !== "function") throw new Error("this Node.js has no net._createServerHandle");
  const handle = create(...args);
  if (typeof handle === "number") throw systemError(handle);
  return handle;
}

/**
 * The bound TCP port; libuv reports a bind's EADDRINUSE only here (or at listen), and Deno's
 * handle not at all: its bind failed where it says port 0, or not the port asked for.
 */
function boundPort(handle: Handle, asked: number): number {
  const out: Record<string, unknown> = {};
  const errno = handle.getsockname?.(out) ?? 0;
  const port = Number(out.port);
  if (errno !== 0 || port === 0 || (asked !== 0 && port !== asked)) {
    handle.close();
    if (errno !== 0) throw systemError(errno);
    throw Object.assign(new Error("bind EADDRINUSE"), { code: "EADDRINUSE", syscall: "bind" });
  }
  return port;
}

/**
 * A handle's descriptor: Node.js has it as `fd`; Deno makes one with `fdForIpc()` (a new
 * duplicate each call, which this process keeps: asked for once, only when wanted).
 */
function descriptor(handle: Handle): number | undefined {
  const h = handle as Handle & { fd?: number; fdForIpc?(): number };
  if (typeof h.fd === "number" && h.fd >= 0) return h.fd;
  return typeof h.fdForIpc === "function" ? h.fdForIpc() : undefined;
}

/** The handle of each descriptor handed out for a child to inherit, by its number here. */
const handedOut = new Map<number, Handle & { setBlocking?(blocking: boolean): number }>();

function shareable(handle: Handle, addr: Addr): ShareableSocket {
  let closed: Promise<void> | undefined;
  let fd: number | undefined | null = null;
  return {
    addr,
    native: handle,
    get fd() {
      if (fd === null) fd = descriptor(handle);
      if (fd !== undefined) handedOut.set(fd, handle);
      return fd;
    },
    close: () => {
      if (typeof fd === "number") handedOut.delete(fd);
      return closed ??= new Promise<void>((resolve) => handle.close(() => resolve()));
    },
  };
}

/** What the parent sends for a key: the socket's address and backlog, and its handle. */
interface Lent {
  readonly addr: Addr;
  readonly backlog?: number;
  readonly handle: unknown;
}

/** Asks the parent for the socket `key` (over IPC) and waits for it, at most `timeoutMs`. */
function ask(key: string, timeoutMs: number): Promise<Lent> {
  return new Promise((resolve, reject) => {
    if (!process.send) {
      reject(Object.assign(new Error("this process has no IPC channel to its parent"), { code: "ENOTCONN" }));
      return;
    }
    const timer = setTimeout(() => {
      process.off("message", onMessage);
      const why = `no socket arrived from the parent process within ${timeoutMs} ms: ` +
        "the parent must call shareWith(child) of its PreparedPlan for each worker process it starts";
      reject(Object.assign(new Error(why), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    const onMessage = (message: unknown, handle: unknown) => {
      const m = message as { polybind?: string; key?: string; addr?: Addr; backlog?: number } | null;
      if (m?.polybind !== "listener" || m.key !== key || !m.addr || !handle) return;
      clearTimeout(timer);
      process.off("message", onMessage);
      resolve({ addr: m.addr, backlog: m.backlog, handle });
    };
    process.on("message", onMessage);
    // The parent may be gone (its channel closed): a rejection, not an uncaught 'error' event.
    process.send({ polybind: "want", key }, undefined, {}, (err: Error | null) => {
      if (!err) return;
      clearTimeout(timer);
      process.off("message", onMessage);
      reject(err);
    });
  });
}

/** Lending a socket to Node.js child processes. */
export const nodeShare: SocketShare = {
  via: "ipc",
  get reusePort() {
    return reusePortBindFlag() !== undefined;
  },
  /**
   * Puts the socket of a descriptor handed out for a child (the `fd` of a socket bound here)
   * back in non-blocking mode, once the child is started. Deno's spawn clears O_NONBLOCK on each
   * descriptor it passes (Node.js leaves it), and that flag belongs to the socket itself, which
   * the workers it is lent to share: while it is clear, a worker whose accept() lost a
   * connection to another process blocks in accept(2), its event loop with it.
   */
  restoreNonBlocking(fd) {
    handedOut.get(fd)?.setBlocking?.(false);
  },
  bind(target) {
    return new Promise((resolve) => {
      // Thrown errors reject this promise.
      if ("fd" in target) {
        const handle = createHandle(null, null, null, target.fd);
        const out: Record<string, unknown> = {};
        const ok = handle.getsockname?.(out) === 0 && typeof out.port === "number";
        resolve(shareable(
          handle,
          ok ? { transport: "tcp", hostname: String(out.address), port: Number(out.port) } : {
            transport: "unix",
            path: `fd://${target.fd}`,
          },
        ));
      } else if ("path" in target) {
        resolve(shareable(createHandle(target.path, -1, -1), { transport: "unix", path: target.path }));
      } else {
        const flags = target.reusePort === true ? reusePortBindFlag() : 0;
        if (flags === undefined) {
          throw Object.assign(new Error("bind ENOTSUP: this node:net cannot set SO_REUSEPORT"), { code: "ENOTSUP" });
        }
        const family = target.hostname.includes(":") ? 6 : 4;
        const handle = createHandle(target.hostname, target.port, family, undefined, flags);
        resolve(
          shareable(handle, { transport: "tcp", hostname: target.hostname, port: boundPort(handle, target.port) }),
        );
      }
    });
  },
  offer(child, key, socket, backlog) {
    const c = child as ChildProcess;
    c.on("message", (message: { polybind?: string; key?: string } | null) => {
      if (message?.polybind === "want" && message.key === key && c.connected) {
        c.send({ polybind: "listener", key, addr: socket.addr, backlog }, socket.native as net.Server);
      }
    });
  },
  async receive(key, timeoutMs) {
    const { addr, backlog, handle } = await ask(key, timeoutMs);
    const server = net.createServer({ allowHalfOpen: true });
    return await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(handle as net.Server, backlog, () => {
        server.off("error", reject);
        resolve(acceptQueue(server, addr));
      });
    });
  },
  async receiveDescriptor(key, timeoutMs) {
    const { handle } = await ask(key, timeoutMs);
    // Deno gives the handle itself (a TCPWrap or Pipe, not listening): a copy of its descriptor.
    const h = handle as Handle & { fdForIpc?(): number };
    const fd = typeof h.fdForIpc === "function" ? h.fdForIpc() : undefined;
    h.close?.();
    if (fd === undefined || fd < 0) {
      throw Object.assign(new Error("the socket arrived without a descriptor this runtime tells"), { code: "ENOTSUP" });
    }
    return fd;
  },
};
