// Handing listening sockets to a successor process (gunicorn's USR2, nginx's binary upgrade):
// startSuccessor() starts it with the sockets as inherited descriptors and their names in
// polybind's own variables; the successor listens on them (`parent-listen:NAME`) and says so
// with successorReady(), after which the predecessor can stop.

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { adapter } from "./_adapter.ts";
import { show } from "./_config.ts";
import { PARENT_LISTEN } from "./_systemd.ts";

/** A listening socket to hand over: its descriptor here, and the name the successor finds it by. */
export interface HandedSocket {
  /** The name (`parent-listen:NAME`); several sockets may share one. No ':' or spaces. */
  readonly name: string;
  /** Its descriptor in this process. */
  readonly fd: number;
}

/** A successor started by {@linkcode startSuccessor}. */
export interface Successor {
  /** Its process id. */
  readonly pid: number;
  /** Resolves once it has called {@linkcode successorReady}; rejects (why) if it ends first. */
  readonly ready: Promise<void>;
  /** Ends it (SIGTERM): a successor that is never ready must not hold the sockets. */
  kill(): void;
}

/** Options of {@linkcode startSuccessor}. */
export interface SuccessorOptions {
  /**
   * The program and its arguments.
   * @default {this runtime and this process's script and arguments}
   */
  command?: [string, ...string[]];
  /** More environment variables (this process's are passed on). */
  env?: Record<string, string>;
}

/** What a successor sends its predecessor once it serves. */
const READY = "polybind-successor-ready";

function checkSockets(sockets: readonly HandedSocket[]): void {
  for (const s of sockets) {
    if (typeof s?.name !== "string" || s.name === "" || /[:\s]/.test(s.name)) {
      throw new TypeError(
        `Cannot start a successor as a socket's 'name' must have no ':' or spaces: current value is ${show(s?.name)}`,
      );
    }
    if (!Number.isInteger(s.fd) || s.fd < 0) {
      throw new TypeError(
        `Cannot start a successor as a socket's 'fd' must be a descriptor: current value is ${show(s.fd)}`,
      );
    }
  }
}

/**
 * Starts a successor that inherits `sockets`: a new process of this program (or `command`)
 * whose descriptors from 3 are the sockets, in order, named in POLYBIND_LISTEN_FDNAMES, with
 * POLYBIND_LISTEN_PID set to this process's id (the successor's parent); it listens on them
 * with `createListener("parent-listen:NAME")` (or `{ parent: NAME }`) and calls
 * {@linkcode successorReady} once it serves. Until then this process serves on; then it can
 * stop (its copies of the sockets close, the successor's stay open: no connection is refused).
 *
 * @param sockets The sockets to hand over.
 * @param options Another program; more environment.
 * @returns The successor: its pid, and its readiness.
 * @throws {TypeError} A socket without a usable name or descriptor.
 * @example
 * ```ts ignore
 * import { startSuccessor } from "polybind";
 * // In the server, on SIGUSR2: hand the listening socket on descriptor 3 to a new process.
 * const next = startSuccessor([{ name: "web", fd: 3 }]);
 * await next.ready; // then stop this one
 * ```
 */
export function startSuccessor(sockets: readonly HandedSocket[], options: SuccessorOptions = {}): Successor {
  checkSockets(sockets);
  const [runtime, flags] = adapter().workerProcess.command();
  const [command, ...args] = options.command ?? [runtime, ...flags, ...process.argv.slice(1)];
  const env = {
    ...process.env,
    ...options.env,
    [PARENT_LISTEN.pid]: String(process.pid),
    [PARENT_LISTEN.fds]: String(sockets.length),
    [PARENT_LISTEN.names]: sockets.map((s) => s.name).join(":"),
  };
  // Descriptors 0-2 are this process's streams; the sockets follow; then the channel it answers on.
  let child: ChildProcess;
  try {
    child = spawn(command!, args, {
      env,
      stdio: ["inherit", "inherit", "inherit", ...sockets.map((s) => s.fd), "ipc"],
    });
  } finally {
    // At once, not when the successor listens: a spawn that leaves a socket blocking (Deno's)
    // would block the accept of every process it is lent to here.
    const share = adapter().share;
    for (const s of sockets) share?.restoreNonBlocking?.(s.fd);
  }
  const ready = new Promise<void>((resolve, reject) => {
    child.on("message", (message) => {
      if (message !== READY) return;
      // It lives on without this process: neither it nor its channel keeps this one running.
      if (child.connected) child.disconnect();
      child.unref();
      resolve();
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      reject(new Error(signal ? `the successor was killed (${signal})` : `the successor exited (code ${code})`));
    });
  });
  ready.catch(() => {});
  return {
    pid: child.pid ?? -1,
    ready,
    kill: () => void child.kill("SIGTERM"),
  };
}

/**
 * In a successor: tells the predecessor that started it that it serves, so that it can stop.
 * Does nothing in a process no predecessor started.
 *
 * @returns Whether a predecessor was told.
 * @example
 * ```ts
 * import { successorReady } from "../mod.ts";
 * console.assert(successorReady() === false); // nobody handed this process sockets
 * ```
 */
export function successorReady(): boolean {
  const platform = adapter().platform;
  if (platform.env(PARENT_LISTEN.pid) !== String(platform.ppid) || typeof process.send !== "function") return false;
  process.send(READY, undefined, {}, () => process.disconnect?.());
  return true;
}
