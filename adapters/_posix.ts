// File-system, DNS and connect primitives through node: modules, which Deno, Bun and Node all
// provide the same way: one implementation serves every adapter.

import { promises as fsp, readFileSync } from "node:fs";
import { lookup as dnsLookup } from "node:dns/promises";
import { connect } from "node:net";
import { resolve as resolvePath } from "node:path";
import process from "node:process";
import type { PathInfo, Platform, UnixFs } from "../src/_adapter.ts";

async function lstat(path: string): Promise<PathInfo | null> {
  try {
    const st = await fsp.lstat(path);
    const kind = st.isSocket()
      ? "socket"
      : st.isFile()
      ? "file"
      : st.isDirectory()
      ? "directory"
      : st.isSymbolicLink()
      ? "symlink"
      : "other";
    return { kind, ino: Number(st.ino), dev: Number(st.dev) };
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return null;
    throw err;
  }
}

/** Connects to a Unix socket to learn whether a server listens there. */
function knock(path: string): Promise<"live" | "refused"> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (state: "live" | "refused") => {
      socket.destroy();
      resolve(state);
    };
    socket.once("connect", () => done("live"));
    socket.once("error", (err: { code?: string }) => done(err.code === "EAGAIN" ? "live" : "refused"));
  });
}

/** The Unix socket file primitives. */
const posixFs: UnixFs = {
  lstat,
  unlink: (path) => fsp.unlink(path),
  rename: (from, to) => fsp.rename(from, to),
  link: (from, to) => fsp.link(from, to),
  chmod: (path, mode) => fsp.chmod(path, mode),
  mkdtemp: (prefix) => fsp.mkdtemp(prefix),
  rmdir: (path) => fsp.rmdir(path),
  knock,
  resolve: (path) => resolvePath(path),
};

/** Resolves a host name to its addresses in the OS's order. */
async function lookupAll(host: string): Promise<string[]> {
  const found = await dnsLookup(host, { all: true });
  return found.map((a) => a.address);
}

/** The POSIX pieces, the same on every runtime: process id, environment, DNS, Unix socket files. */
export const platform: Platform = {
  pid: process.pid,
  get ppid() {
    return process.ppid;
  },
  env: (name: string): string | undefined => process.env[name],
  lookup: lookupAll,
  fs: posixFs,
  readText: (path: string): Promise<string | null> => fsp.readFile(path, "utf8").catch(() => null),
  readTextSync(path: string): string | null {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return null;
    }
  },
};
