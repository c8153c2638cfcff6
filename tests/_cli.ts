// Helpers for the command's life tests: the repository root, the processes a command started,
// bounded waits on conditions, and commands other than polybind's own (deno task, npm start,
// systemd-socket-activate).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { within } from "./_helpers.ts";
import { projectFile } from "./_process.ts";
import { runtimeCommand } from "./_runtime_command.ts";

function isRoot(dir: string): boolean {
  const file = join(dir, "package.json");
  return existsSync(file) && (JSON.parse(readFileSync(file, "utf8")) as { name?: string }).name === "polybind";
}

/**
 * The repository root: the nearest folder above this file with polybind's package.json (tests/
 * and .build/tests/), else the working folder (a build in another out dir, run from the root).
 */
export function projectRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (isRoot(dir)) return dir;
  }
  if (isRoot(process.cwd())) return process.cwd();
  throw new Error("Cannot find the repository root from this test file or the working folder");
}

/** The state letter of process `pid` in /proc (R, S, T, Z...), or undefined once it is gone. */
function procState(pid: number): string | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").at(-1)!.split(" ")[0];
  } catch {
    return undefined;
  }
}

/** Whether process `pid` still runs (a zombie, ended but not yet reaped, does not). */
export function running(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== "Z";
}

/** The processes whose parent is `pid`, from /proc. */
export function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const fields = readFileSync(`/proc/${name}/stat`, "utf8").split(") ").at(-1)!.split(" ");
      if (Number(fields[1]) === pid) found.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** The processes `pid` started, and theirs, and so on. */
export function descendantsOf(pid: number): number[] {
  const children = childrenOf(pid);
  return [...children, ...children.flatMap(descendantsOf)];
}

/** Polls `condition` every 10 ms until it holds; false if `ms` pass first. */
export async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= end) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/**
 * Sends `sig` to `pid` if it is still there. Deno's ChildProcess.kill() sends one signal only
 * (a second call does nothing), so tests that signal twice use process.kill.
 */
export function signal(pid: number, sig: "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGUSR2" | "SIGKILL" | "SIGSTOP"): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** A command started by {@linkcode start}, with its output collected. */
export interface Started {
  readonly process: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the first stdout line matching `pattern`; rejects if it exits first or `ms` pass. */
  line(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves with the exit code (null for a signal) once every process holding its output has ended. */
  readonly exited: Promise<number | null>;
}

/** Starts `command` with `args` in `cwd`, its stdout and stderr piped and collected. */
export function start(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Started {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let buffered = "";
  child.stdout!.on("data", (d: Buffer) => {
    const lines = (buffered + d.toString()).split("\n");
    buffered = lines.pop()!;
    stdout.push(...lines);
  });
  child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once("error", () => resolve(null));
    child.once("close", (code) => resolve(code));
  });
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    process: child,
    stdout,
    stderr,
    exited,
    async line(pattern, ms = 20_000) {
      const found = () => stdout.find((l) => pattern.test(l));
      const seen = await waitFor(() => found() !== undefined || ended, ms);
      const line = found();
      if (line !== undefined) return line;
      throw new Error(
        `${seen ? "exited" : `no output in ${ms} ms`} without ${pattern}: ${stdout.join("\n")}\n${stderr.join("")}`,
      );
    },
  };
}

/**
 * Starts `polybind serve` with `args` under systemd-socket-activate, which binds `listen`
 * ("127.0.0.1:PORT", "[::1]:PORT") and starts the command on the first connection; resolves
 * once the socket is bound. Stop it with {@linkcode stopActivated}.
 *
 * @param listen The address systemd-socket-activate binds.
 * @param args The arguments after `polybind serve`.
 * @returns The started systemd-socket-activate (polybind once exec'd).
 */
export async function socketActivated(listen: string, args: string[]): Promise<Started> {
  const [command, rest] = runtimeCommand(projectFile("cli/polybind"), ["serve", ...args]);
  const child = start("systemd-socket-activate", ["-l", listen, command, ...rest]);
  const bound = () => child.stderr.join("").includes("Listening on");
  let ended = false;
  void child.exited.then(() => (ended = true));
  if (!await waitFor(() => bound() || ended, 10_000) || !bound()) {
    const why = new Error(`systemd-socket-activate did not start: ${child.stderr.join("")}`);
    await stopActivated(child).catch(() => {});
    throw why;
  }
  return child;
}

/**
 * Stops what {@linkcode socketActivated} started (SIGINT) and waits for its end; what is left
 * after 20 s (it, or workers holding its output) is killed.
 *
 * @param child What socketActivated returned.
 */
export async function stopActivated(child: Started): Promise<void> {
  const pid = child.process.pid;
  if (pid === undefined) return;
  const workers = descendantsOf(pid);
  signal(pid, "SIGINT");
  try {
    await within(child.exited, "the end of systemd-socket-activate", 20_000);
  } catch (err) {
    for (const p of [pid, ...workers, ...descendantsOf(pid)]) signal(p, "SIGKILL");
    throw err;
  }
}
