// Open descriptors of this process, counted the same way on Deno, Bun and Node (/proc/self/fd
// read with node:fs), and children of this same runtime under a descriptor limit or as another
// user, which import polybind and report back in JSON lines.

import { spawn } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, linkSync, mkdtempSync } from "node:fs";
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { capabilities } from "../mod.ts";

/** Whether this OS shows a process's descriptors in /proc. */
export const canCountFds: boolean = (() => {
  try {
    return readdirSync("/proc/self/fd").length > 0;
  } catch {
    return false;
  }
})();

/** The descriptors open in this process (without the one used to list them), by number. */
export function fdTargets(pid: number | "self" = "self"): Map<number, string> {
  const dir = `/proc/${pid}/fd`;
  const found = new Map<number, string>();
  for (const name of readdirSync(dir)) {
    try {
      found.set(Number(name), readlinkSync(`${dir}/${name}`));
    } catch {
      // The descriptor readdir itself used, closed by now.
    }
  }
  return found;
}

/** How many descriptors are open in this process (or in process `pid`). */
export function openFds(pid: number | "self" = "self"): number {
  return fdTargets(pid).size;
}

/**
 * The descriptors open now that were not open in `before` (as "fd=target"), once closes have
 * settled: runtimes close some sockets on a later tick, so this waits up to `ms` for them.
 */
export async function leakedFds(before: Map<number, string>, ms = 2000): Promise<string[]> {
  const end = Date.now() + ms;
  while (true) {
    const opened = [...fdTargets()].filter(([fd, to]) => before.get(fd) !== to).map(([fd, to]) => `${fd}=${to}`);
    if (opened.length === 0 || Date.now() >= end) return opened;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The URL of polybind's entry point (or of `rel` inside it) as this runtime imports it: .ts or built .js. */
export function libraryUrl(rel = "mod"): string {
  const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
  return new URL(`../${rel}${ext}`, import.meta.url).href;
}

/** Whether the user `nobody` can reach and run `file` (every folder above it searchable). */
function othersCanRun(file: string): boolean {
  let at = file;
  while (true) {
    if ((statSync(at).mode & 0o001) === 0) return false;
    if (at === "/") return true;
    at = dirname(at);
  }
}

/** The entries of `after` (from `fdList()` in a child) that are not in `before`. */
export function openedSince(before: unknown, after: unknown): string[] {
  const was = new Set(before as string[]);
  return (after as string[]).filter((fd) => !was.has(fd));
}

/** A JSON message from a child, or its exit. */
export type Message = Record<string, unknown>;

/** A child process of this runtime running a polybind script. */
export interface Child {
  readonly pid: number;
  /** The next JSON line the child wrote; rejects if it exits first or `ms` pass. */
  next(ms?: number): Promise<Message>;
  /** Writes one line to the child's stdin. */
  send(line: string): void;
  /** Closes stdin, waits for the exit (killing after `ms`), removes its folder; returns code and stderr. */
  end(ms?: number): Promise<{ code: number | null; signal: string | null; stderr: string }>;
  /** CPU time (user + system) used so far, in clock ticks (1/100 s on Linux). */
  cpuTicks(): number;
}

/** Options for {@linkcode spawnScript}. */
export interface SpawnOptions {
  /** Soft and hard limit of open descriptors (`prlimit --nofile`). */
  nofile?: number;
  /** Run as `nobody` (with `setpriv`) when this process is root. */
  unprivileged?: boolean;
  /** File mode creation mask for the child (run through `sh -c umask`). */
  umask?: number;
}

/**
 * Writes `body` as an ES module after a prelude, and runs it with this runtime. The prelude
 * defines `lib` (polybind), `adapterMod` (src/_adapter), `say(obj)` (one JSON line to stdout),
 * `fds()` (how many descriptors are open), `fdList()` (them, as "fd=target"), `settledFdList(before)`
 * (fdList() once closes have settled: as soon as it equals `before`, or after 2 s at most),
 * `nextLine()` (the next line of stdin, as an iterator result; stdin
 * is opened on first use, as Deno then duplicates its descriptor), and registers a
 * SIGTERM handler first thing: Deno 2.9 panics if it installs its signal handling lazily
 * while descriptors are exhausted.
 */
export function spawnScript(body: string, opts: SpawnOptions = {}): Child {
  const dir = mkdtempSync(join(tmpdir(), "pb-child-"));
  chmodSync(dir, 0o755);
  const prelude = `import process from "node:process";
import { readdirSync, readlinkSync } from "node:fs";
import { createInterface } from "node:readline";
process.on("SIGTERM", () => process.exit(143));
const lib = await import(${JSON.stringify(libraryUrl())});
const adapterMod = await import(${JSON.stringify(libraryUrl("src/_adapter"))});
const say = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
const fds = () => readdirSync("/proc/self/fd").length - 1;
const fdList = () => readdirSync("/proc/self/fd").flatMap((fd) => {
  try { return [fd + "=" + readlinkSync("/proc/self/fd/" + fd)]; } catch { return []; }
});
const settledFdList = async (before) => {
  for (const end = Date.now() + 2000; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
    const now = fdList();
    if (now.length === before.length && now.every((f, i) => f === before[i])) return now;
  }
  return fdList();
};
let stdin;
const nextLine = () => (stdin ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]()).next();
`;
  const script = join(dir, "child.mjs");
  writeFileSync(script, prelude + body);
  const runtime = capabilities().runtime;
  let exe = process.execPath;
  const asNobody = opts.unprivileged === true && process.getuid?.() === 0;
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
    NODE_OPTIONS: "",
  };
  if (asNobody) {
    chownSync(dir, 65534, 65534);
    Object.assign(env, { HOME: dir, TMPDIR: dir, DENO_DIR: join(dir, "deno") });
    if (!othersCanRun(exe)) {
      // npx keeps Node 24 under /root, which nobody cannot enter: run a link (or copy) of it.
      const copy = join(dir, basename(exe));
      try {
        linkSync(exe, copy);
      } catch {
        copyFileSync(exe, copy);
        chmodSync(copy, 0o755);
      }
      exe = copy;
    }
  }
  const flags = runtime === "deno"
    ? ["run", "-A", ...(capabilities().udp ? ["--unstable-net"] : []), script]
    : [script];
  let argv = [exe, ...flags];
  if (asNobody) argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", ...argv];
  if (opts.nofile !== undefined) argv = ["prlimit", `--nofile=${opts.nofile}:${opts.nofile}`, "--", ...argv];
  if (opts.umask !== undefined) {
    argv = ["sh", "-c", `umask ${opts.umask.toString(8).padStart(3, "0")} && exec "$@"`, "sh", ...argv];
  }
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env, cwd: dir });
  let buffered = "";
  let stderr = "";
  const queue: Message[] = [];
  let wake: (() => void) | undefined;
  let exited: { code: number | null; signal: string | null } | undefined;
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        queue.push(JSON.parse(line));
      } catch {
        queue.push({ unparsed: line });
      }
    }
    wake?.();
  });
  child.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  child.stdin!.on("error", () => {});
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      wake?.();
      resolve(exited);
    });
  });
  return {
    pid: child.pid!,
    async next(ms = 20_000) {
      const end = Date.now() + ms;
      while (queue.length === 0) {
        if (exited) throw new Error(`child exited (${exited.code ?? exited.signal}) with stderr: ${stderr}`);
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no message from the child in ${ms} ms; stderr: ${stderr}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 100));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      return queue.shift()!;
    },
    send(line) {
      child.stdin!.write(line + "\n");
    },
    async end(ms = 10_000) {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), ms);
      const result = await exit;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return { ...result, stderr };
    },
    cpuTicks() {
      const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return Number(fields[11]) + Number(fields[12]);
    },
  };
}
