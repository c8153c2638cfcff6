// Bad input, as one table run on every runtime: each case gets a typed error (TypeError,
// RangeError or ListenError) whose message names the field and shows the value, leaves no
// descriptor open, and changes or removes no file.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";
import { createSocket, type Socket } from "node:dgram";
import {
  capabilities,
  cleanupUnixSocket,
  createListener,
  createListeners,
  createUdpListener,
  createUdpListeners,
  type Listener,
  ListenError,
} from "../mod.ts";
import { exchange, leaveStaleSocket, otherProcessServer, serveUpper } from "./_helpers.ts";
import { canCountFds, fdTargets, leakedFds, openedSince, spawnScript } from "./_fd.ts";

type ErrorClass = typeof TypeError | typeof RangeError | typeof ListenError;

interface Case {
  /** The field the message must name (as a word). */
  field: string;
  /** What the message must show of the value; by default the value as polybind shows it. */
  shows: string;
  error: ErrorClass;
  /** For a ListenError: its code. */
  code?: string;
  /** The call, by name and arguments. */
  fn: "createListener" | "createListeners" | "createUdpListener" | "createUdpListeners" | "cleanupUnixSocket";
  args: unknown[];
  /** Run in a child process as an unprivileged user (root may write anywhere). */
  unprivileged?: boolean;
}

/** How polybind's messages show a value (see `show` in src/_config.ts). */
function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

const API = { createListener, createListeners, createUdpListener, createUdpListeners, cleanupUnixSocket } as const;

const T = { timeout: 20_000 };
/** The folder of the path cases, made now (cases name paths in it) and filled in before(). */
const dir = mkdtempSync(join(tmpdir(), "pb-bad-"));
let live: { kill(): Promise<void> };
let taken: Listener;
let takenUdp: Socket;
const at = (name: string) => join(dir, name);

/** Every bad input that is not a Unix socket path, as [name, case]. */
function cases(): [string, Case][] {
  const list: [string, Case][] = [];
  const add = (name: string, c: Omit<Case, "shows"> & { shows?: string }, value?: unknown) =>
    list.push([name, { shows: show(value), ...c }]);
  const one = (field: string, value: unknown, error: ErrorClass, extra: Record<string, unknown> = {}) =>
    add(`${field} ${show(value)}`, { field, error, fn: "createListener", args: [{ ...extra, [field]: value }] }, value);

  // port
  for (const v of [-1, 65536, 80.5, NaN, Infinity, -Infinity, 1e21]) one("port", v, RangeError);
  for (const v of ["80", null, true, {}, [80], 80n, Symbol("port")]) one("port", v, TypeError);
  // host
  for (const v of ["", "127.0.0.300", "1.2.3", "256.1.1.1", "01.2.3.4", "::g", "1::2::3", "[::1", "fe80::1%", "a b"]) {
    one("host", v, RangeError);
  }
  add("host over-long (300 characters)", {
    field: "host",
    error: RangeError,
    fn: "createListener",
    args: [{ host: "a".repeat(300) }],
    shows: show("a".repeat(80) + "..."),
  });
  for (const v of [1, null, ["127.0.0.1"], { name: "x" }]) one("host", v, TypeError);
  add("host unresolvable", {
    field: "host",
    error: ListenError,
    code: "ENOTFOUND",
    fn: "createListener",
    args: [{ host: "no-such-host.invalid", port: 0 }],
  }, "no-such-host.invalid");
  add("host not on this machine (IPv4)", {
    field: "host",
    error: ListenError,
    code: "EADDRNOTAVAIL",
    fn: "createListener",
    args: [{ host: "192.0.2.1", port: 0 }],
    shows: "192.0.2.1:0",
  });
  add("host not on this machine (IPv6)", {
    field: "host",
    error: ListenError,
    code: "EADDRNOTAVAIL",
    fn: "createListener",
    args: [{ host: "2001:db8::1", port: 0 }],
    shows: "[2001:db8::1]:0",
  });
  // backlog
  for (const v of [0, -1, 1e9, 65536, 1.5, NaN]) one("backlog", v, RangeError, { port: 0 });
  for (const v of ["10", null]) one("backlog", v, TypeError, { port: 0 });
  // udsMode, with and without a path
  for (const v of [-1, 0o1000, 1.5, NaN]) one("udsMode", v, RangeError, { uds: "/tmp/pb-unused.sock" });
  for (const v of ["0o660", null]) one("udsMode", v, TypeError, { uds: "/tmp/pb-unused.sock" });
  one("udsMode", 0o7777, RangeError, { port: 0 });
  // count, for stream and datagram listeners
  for (const fn of ["createListeners", "createUdpListeners"] as const) {
    for (const v of [0, -1, 1.5, NaN, Infinity, 100000]) {
      add(`${fn} count ${show(v)}`, { field: "count", error: RangeError, fn, args: [{ port: 0 }, v] }, v);
    }
    for (const v of ["2", null, undefined]) {
      add(`${fn} count ${show(v)}`, { field: "count", error: TypeError, fn, args: [{ port: 0 }, v] }, v);
    }
  }
  // options of createListeners
  for (const v of ["yes", 1]) {
    add(`shared ${show(v)}`, {
      field: "shared",
      error: TypeError,
      fn: "createListeners",
      args: [{ port: 0 }, 2, { shared: v }],
    }, v);
  }
  add(
    "options null",
    { field: "options", error: TypeError, fn: "createListeners", args: [{ port: 0 }, 2, null] },
    null,
  );
  // the config itself (a string is an address, parsed: see parseAddress)
  for (const fn of ["createListener", "createUdpListener", "cleanupUnixSocket"] as const) {
    for (const v of [null, 8080, [], undefined, true]) {
      add(`${fn} config ${show(v)}`, { field: "config", error: TypeError, fn, args: [v] }, v);
    }
    for (const v of ["not an address", "127.0.0.1", "[::1]:99999", "http://127.0.0.1:0"]) {
      add(`${fn} address ${show(v)}`, { field: "address", error: RangeError, fn, args: [v] }, v);
    }
  }
  // datagram listeners check the same fields
  add("UDP port -1", { field: "port", error: RangeError, fn: "createUdpListener", args: [{ port: -1 }] }, -1);
  add('UDP host "::g"', { field: "host", error: RangeError, fn: "createUdpListener", args: [{ host: "::g" }] }, "::g");
  return list;
}

/** Cases on a Unix socket path, in the folder `dir` prepared by before(). */
function pathCases(): [string, Case][] {
  const uds = (name: string, path: string, error: ErrorClass, code?: string, extra: Partial<Case> = {}) =>
    [name, {
      field: "uds",
      shows: error === ListenError ? path : show(path),
      error,
      code,
      ...extra,
      fn: extra.fn ?? "createListener",
      args: extra.args ?? [{ uds: path }],
    }] as [string, Case];
  const long = at("s".repeat(120));
  return [
    uds("uds empty", "", RangeError),
    uds("uds with a NUL byte", at("a\0b.sock"), RangeError),
    uds("uds too long", long, RangeError),
    uds("uds not a string", 5 as unknown as string, TypeError, undefined, { shows: "5", args: [{ uds: 5 }] }),
    uds("uds an object", {} as unknown as string, TypeError, undefined, { shows: "{}", args: [{ uds: {} }] }),
    uds("uds in a missing folder", at("missing/a.sock"), ListenError, "ENOENT"),
    uds("uds in a folder that is a file", at("regular/a.sock"), ListenError, "ENOTDIR"),
    uds("uds in a folder without write permission", at("readonly/a.sock"), ListenError, "EACCES", {
      unprivileged: true,
    }),
    uds("uds an existing regular file", at("regular"), ListenError, "EEXIST"),
    uds("uds a directory", at("folder"), ListenError, "EEXIST"),
    uds("uds a symlink to a file", at("link-file"), ListenError, "EEXIST"),
    uds("uds a symlink to a live socket", at("link-live"), ListenError, "EEXIST"),
    uds("uds a symlink to a stale socket", at("link-stale"), ListenError, "EEXIST"),
    uds("uds a live socket", at("live.sock"), ListenError, "EADDRINUSE"),
    uds("uds for UDP", at("udp.sock"), TypeError, undefined, { fn: "createUdpListener" }),
    uds("uds empty, to cleanupUnixSocket", "", RangeError, undefined, { fn: "cleanupUnixSocket" }),
    uds("uds too long, to cleanupUnixSocket", long, RangeError, undefined, { fn: "cleanupUnixSocket" }),
  ];
}

/** Everything about every file under `root`, to tell whether anything changed. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string) => {
    const st = await lstat(path);
    const kind = st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : st.isSocket() ? "socket" : "file";
    let detail = `${kind} mode=${st.mode.toString(8)} ino=${st.ino} nlink=${st.nlink} uid=${st.uid}`;
    if (kind === "link") detail += ` to=${await readlink(path)}`;
    if (kind === "file") detail += ` size=${st.size} mtime=${st.mtimeMs} data=${await readFile(path, "utf8")}`;
    if (kind !== "dir") detail += ` ctime=${st.ctimeMs}`;
    out[relative(root, path) || "."] = detail;
    if (kind === "dir") { for (const name of await readdir(path)) await walk(join(path, name)); }
  };
  await walk(root);
  return out;
}

/** Runs a case in a child process as `nobody`; resolves with what it threw and its descriptor counts. */
async function runUnprivileged(
  c: Case,
): Promise<{ error: Record<string, unknown>; before: string[]; after: string[] }> {
  const child = spawnScript(
    `const before = fdList();
let error = { name: "none" };
try {
  const made = await lib[${JSON.stringify(c.fn)}](...${JSON.stringify(c.args)});
  for (const l of [made].flat()) await l?.close?.();
} catch (err) {
  error = { name: err.name, className: err.constructor.name, code: err.code, message: err.message, address: err.address };
}
say({ error, before, after: await settledFdList(before) });`,
    { unprivileged: true },
  );
  try {
    return (await child.next()) as { error: Record<string, unknown>; before: string[]; after: string[] };
  } finally {
    await child.end();
  }
}

function checkError(
  name: string,
  c: Case,
  err: { name?: unknown; code?: unknown; message?: unknown; address?: unknown },
) {
  const expected = c.error === ListenError ? "ListenError" : c.error.name;
  assert.equal(err.name, expected, `${name}: ${String(err.name)}: ${String(err.message)}`);
  const message = String(err.message);
  if (c.code !== undefined) assert.equal(err.code, c.code, message);
  assert.ok(message.includes(c.shows), `the message shows the value ${c.shows}: ${message}`);
  if (c.error === ListenError) {
    assert.ok(String(err.address).includes(c.shows.replace(/^"|"$/g, "")), `address ${String(err.address)}`);
  } else {
    // polybind's style quotes the field ('port'); count messages start with it; an address string
    // is named as such ("Cannot parse address ...").
    const named = message.includes(`'${c.field}'`) || message.startsWith(`${c.field} `) ||
      message.startsWith(`Cannot parse ${c.field} `);
    assert.ok(named, `the message names '${c.field}': ${message}`);
  }
  if (c.field === "uds") assert.doesNotMatch(message, /\bport\b/i, `no port hint for a Unix path: ${message}`);
}

describe("bad input gets a typed error naming the field and the value, and does no harm", () => {
  before(async () => {
    await chmod(dir, 0o755); // nobody must reach readonly/
    await writeFile(at("regular"), "precious");
    await mkdir(at("folder"));
    await writeFile(at("folder/inner"), "inside");
    await mkdir(at("readonly"), { mode: 0o555 });
    await chmod(at("readonly"), 0o555);
    await symlink(at("regular"), at("link-file"));
    live = await otherProcessServer(at("live.sock"));
    await symlink(at("live.sock"), at("link-live"));
    await leaveStaleSocket(at("stale.sock"));
    await symlink(at("stale.sock"), at("link-stale"));
    taken = await createListener({ port: 0 });
    takenUdp = createSocket("udp4");
    await new Promise<void>((resolve) => takenUdp.bind(0, "127.0.0.1", resolve));
  });

  after(async () => {
    await taken.close();
    await new Promise<void>((resolve) => takenUdp.close(() => resolve()));
    await live.kill();
    await rm(dir, { recursive: true, force: true });
  });

  /** Cases on ports taken in before(): their arguments are only known then. */
  const inUse = (name: string, fn: Case["fn"], port: () => number, code = "EADDRINUSE"): [string, Case] => [name, {
    field: "port",
    shows: "",
    error: ListenError,
    code,
    fn,
    args: [port],
  }];
  const udpCode = (code: string) => (capabilities().udp ? code : "ENOTSUP");
  const all = [
    ...cases(),
    ...pathCases(),
    inUse("port in use", "createListener", () => (taken.addr as { port: number }).port),
    inUse("UDP port in use", "createUdpListener", () => takenUdp.address().port, udpCode("EADDRINUSE")),
    ["UDP host not on this machine", {
      field: "host",
      shows: "192.0.2.1:0",
      error: ListenError,
      code: udpCode("EADDRNOTAVAIL"),
      fn: "createUdpListener",
      args: [{ host: "192.0.2.1", port: 0 }],
    }] as [string, Case],
  ];

  test(`the table has at least 40 cases (${all.length}, ${pathCases().length} on Unix paths)`, () => {
    assert.ok(all.length >= 40);
  });

  for (const [name, template] of all) {
    test(name, T, async () => {
      const c = { ...template };
      if (typeof c.args[0] === "function") {
        const port = (c.args[0] as () => number)();
        c.args = [{ host: "127.0.0.1", port }];
        c.shows = `127.0.0.1:${port}`;
      }
      await runCase(name, c);
    });
  }

  async function runCase(name: string, c: Case): Promise<void> {
    const files = await snapshot(dir);
    if (c.unprivileged) {
      const { error, before, after } = await runUnprivileged(c);
      checkError(name, c, error);
      assert.deepEqual(openedSince(before, after), [], "no descriptor left open in the child");
    } else {
      const fds = canCountFds ? fdTargets() : new Map();
      let error: unknown;
      try {
        const made = await (API[c.fn] as (...args: unknown[]) => Promise<unknown>)(...c.args);
        for (const l of [made].flat() as { close?: () => Promise<void> }[]) await l?.close?.();
      } catch (err) {
        error = err;
      }
      assert.ok(error instanceof Error, `${name} was accepted`);
      checkError(name, c, Object.assign({}, error, { name: error.name, message: error.message }));
      assert.ok(error instanceof c.error, `${error.constructor.name} is a ${c.error.name}`);
      if (canCountFds) {
        assert.deepEqual(await leakedFds(fds), [], "no descriptor left open");
      }
    }
    assert.deepEqual(await snapshot(dir), files, "no file is changed or removed");
  }

  test("a relative Unix path is resolved against the working directory, bound and cleaned up", T, async () => {
    const fds = canCountFds ? fdTargets() : new Map();
    const path = relative(process.cwd(), at("relative.sock"));
    assert.ok(!path.startsWith("/"));
    const listener = await createListener({ uds: path });
    assert.ok((await lstat(at("relative.sock"))).isSocket());
    const serving = serveUpper(listener);
    assert.equal(await exchange(at("relative.sock"), "rel"), "REL");
    await listener.close();
    await serving;
    await assert.rejects(lstat(at("relative.sock")), { code: "ENOENT" });
    if (canCountFds) {
      assert.deepEqual(await leakedFds(fds), [], "no descriptor left open");
    }
  });
});
