// Running the project's examples and command in a child process of the current runtime.

import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeCommand } from "./_runtime_command.ts";

const EXT = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

/** Path of a project file, as source (Deno, Bun) or compiled (Node). */
export function projectFile(relative: string): string {
  return fileURLToPath(new URL(`../${relative}${EXT}`, import.meta.url));
}

/** A child process with its output collected. */
export interface Child {
  readonly process: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: "SIGTERM" | "SIGINT"): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/** Starts `relative` (e.g. "examples/echo") on this runtime with `args`. */
export function run(relative: string, args: string[] = [], env: Record<string, string> = {}): Child {
  const [command, argv] = runtimeCommand(projectFile(relative), args);
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: (() => void)[] = [];
  let buffered = "";
  child.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    stdout.push(...lines);
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  let sent: string | undefined;
  // Deno's node:child_process reports the signal it sent even when the child handled it and
  // exited with 0 (Deno 2.9.6), so there a child stopped by our own signal counts as a clean exit.
  const denoParent = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code, signal) => resolve(code ?? (denoParent && signal === sent ? 0 : null)))
  );
  return {
    process: child,
    stdout,
    stderr,
    exited,
    line(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line ${pattern}: ${stdout.join("\n")} ${stderr.join("")}`)),
          timeoutMs,
        );
        const check = () => {
          const found = stdout.find((l) => pattern.test(l));
          if (found !== undefined) {
            clearTimeout(timer);
            resolve(found);
          } else waiters.push(check);
        };
        void exited.then(() => {
          const found = stdout.find((l) => pattern.test(l));
          if (found === undefined) {
            clearTimeout(timer);
            reject(new Error(`exited without ${pattern}: ${stdout.join("\n")} ${stderr.join("")}`));
          }
        });
        check();
      });
    },
    stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        sent = signal;
        child.kill(signal);
      }
      return exited;
    },
  };
}

/** One HTTP GET over TCP (`http://host:port/`) or a Unix socket (`unix:/path`); resolves with status, headers, body. */
export function get(
  where: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const target = where.startsWith("unix:")
      ? { socketPath: where.slice(5), path: "/", agent: false as const }
      : { ...urlParts(where), agent: false as const };
    const req = request(target, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function urlParts(url: string) {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port), path: u.pathname };
}
