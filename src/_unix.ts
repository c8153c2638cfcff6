// Unix socket files: make a path free without ever removing anything but a stale socket, bind
// under a fresh name and link it into place, and remove only our own socket file afterwards.

import type { PathInfo, UnixFs } from "./_adapter.ts";
import { errorCode, toListenError } from "./_errors.ts";
import { ListenError } from "./errors.ts";

function suffix(): string {
  return Math.random().toString(36).slice(2, 8).padEnd(6, "0");
}

function notASocket(path: string, info: PathInfo): ListenError {
  return new ListenError(
    `Cannot bind ${path} as a ${info.kind} is there, not a socket. Remove it or choose another path.`,
    { code: "EEXIST", address: path },
  );
}

function inUse(path: string): ListenError {
  return new ListenError(`Address ${path} is already in use. Is another server running?`, {
    code: "EADDRINUSE",
    address: path,
  });
}

/** Runs a file-system step, turning what it throws into a ListenError about `path`. */
async function step<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toListenError(err, path);
  }
}

/**
 * Removes the socket file at `path` only if it is still the one described by `expected` and
 * nobody listens on it: it is moved aside first, checked there, and put back untouched if
 * something else had been swapped in (a new socket can reuse the inode of a removed one, so a
 * live listener is also checked for).
 *
 * @returns Whether the file was removed.
 */
export async function removeSocketFile(fs: UnixFs, path: string, expected: PathInfo): Promise<boolean> {
  const aside = `${path}.${suffix()}.stale`;
  try {
    await fs.rename(path, aside);
  } catch (err) {
    if (errorCode(err) === "ENOENT") return false;
    throw toListenError(err, path);
  }
  const info = await fs.lstat(aside);
  const same = info?.kind === "socket" && info.ino === expected.ino && info.dev === expected.dev;
  if (same && await fs.knock(aside) === "refused") {
    await fs.unlink(aside);
    return true;
  }
  try {
    if (info?.kind === "directory") await fs.rename(aside, path);
    else {
      await fs.link(aside, path);
      await fs.unlink(aside);
    }
  } catch (cause) {
    throw new ListenError(
      `A file was swapped in at ${path} while polybind checked it; it is kept at ${aside}`,
      { code: "EEXIST", address: path, cause },
    );
  }
  return false;
}

/**
 * Makes `path` free for a new socket: nothing there, or a stale socket (nobody listening) that is
 * then removed. A live socket or any other kind of file is an error and stays untouched.
 *
 * @throws {ListenError} EADDRINUSE for a live socket, EEXIST for anything that is not a socket.
 */
export async function clearStaleSocket(fs: UnixFs, path: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const info = await step(path, () => fs.lstat(path));
    if (info === null) return;
    if (info.kind !== "socket") throw notASocket(path, info);
    if (await fs.knock(path) === "live") throw inUse(path);
    if (await removeSocketFile(fs, path, info)) return;
  }
  throw inUse(path);
}

/**
 * A fresh folder only this user can enter, on the same file system as `dir` (so a socket in it
 * can be hard-linked into `dir`), short enough for a socket path: in `dir` itself, or else in
 * the nearest ancestor that fits and is writable. `undefined` if there is none.
 */
async function privateFolder(fs: UnixFs, dir: string, maxPath: number): Promise<string | undefined> {
  const device = (await fs.lstat(dir))?.dev;
  for (let at = dir; at !== ""; at = at === "/" ? "" : at.slice(0, Math.max(at.lastIndexOf("/"), 1))) {
    const base = at.endsWith("/") ? at : `${at}/`;
    // ".pb-" + 6 random characters + "/s"
    if (new TextEncoder().encode(base).length + 12 > maxPath) continue;
    if ((await fs.lstat(at).catch(() => null))?.dev !== device) return undefined;
    const made = await fs.mkdtemp(`${base}.pb-`).catch(() => undefined);
    if (made !== undefined) return made;
  }
  return undefined;
}

/** A socket bound and linked into place: its identity, for removing only this file later. */
export interface PlacedSocket<L> {
  readonly listener: L;
  readonly info: PathInfo;
}

/**
 * A place made ready for a socket at `path`: bind it at `at`, then {@linkcode Placement.finish}
 * gives it its mode and links it into place, or {@linkcode Placement.abort} gives up.
 */
export interface Placement {
  /** Where to bind: inside a fresh private folder (mode 0o700), or `path` itself if none can be made. */
  readonly at: string;
  /** Gives the bound socket `mode`, links it to `path` and returns the identity of the file there. */
  finish(mode: number): Promise<PathInfo>;
  /** Removes the private folder (and a socket bound in it that was not linked into place). */
  abort(): Promise<void>;
}

/**
 * Makes `path` ready for a new socket: its folder must exist, a stale socket there is removed
 * (a live one or any other file is refused), and a private folder is made to bind in.
 *
 * @param maxPath The OS limit on socket path length in bytes.
 * @throws {ListenError} ENOENT without the folder, EADDRINUSE or EEXIST for what is at `path`.
 */
export async function preparePlace(fs: UnixFs, path: string, maxPath: number): Promise<Placement> {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, Math.max(slash, 1));
  if ((await step(path, () => fs.lstat(dir))) === null) {
    // Checked first: Node reports a missing directory as EACCES.
    throw new ListenError(`Cannot bind ${path} as its directory ${dir} does not exist. Create the directory first.`, {
      code: "ENOENT",
      address: path,
    });
  }
  await clearStaleSocket(fs, path);
  const private_ = await privateFolder(fs, dir, maxPath);
  const at = private_ === undefined ? path : `${private_}/s`;
  let cleared = false;
  const abort = async () => {
    if (private_ === undefined || cleared) return;
    cleared = true;
    await fs.unlink(at).catch(() => {});
    await fs.rmdir(private_).catch(() => {});
  };
  return {
    at,
    abort,
    async finish(mode) {
      try {
        await fs.chmod(at, mode);
        if (private_ !== undefined) {
          try {
            await fs.link(at, path);
          } catch (err) {
            throw errorCode(err) === "EEXIST" ? inUse(path) : toListenError(err, path);
          }
        }
        const info = await fs.lstat(path);
        if (info === null || info.kind !== "socket") throw inUse(path);
        return info;
      } catch (err) {
        throw toListenError(err, path);
      } finally {
        await abort();
      }
    },
  };
}

/**
 * Binds a Unix socket at `path` with `mode`. It is bound inside a fresh private folder (mode
 * 0o700, so nobody can connect while its mode is not yet set) on the same file system, given its
 * mode, then hard-linked into place, which fails rather than replace anything that appeared
 * meanwhile. Only where no such folder can be made is it bound in place, its mode set right after.
 *
 * @param bind Binds a listener at a path.
 * @param close Closes such a listener.
 * @param maxPath The OS limit on socket path length in bytes.
 */
export async function placeSocket<L>(
  fs: UnixFs,
  path: string,
  mode: number,
  maxPath: number,
  bind: (path: string) => Promise<L>,
  close: (listener: L) => Promise<void>,
): Promise<PlacedSocket<L>> {
  const place = await preparePlace(fs, path, maxPath);
  let listener: L;
  try {
    listener = await bind(place.at);
  } catch (err) {
    await place.abort();
    throw toListenError(err, path);
  }
  try {
    return { listener, info: await place.finish(mode) };
  } catch (err) {
    await close(listener).catch(() => {});
    throw err;
  }
}
