// Inherited sockets named in the environment: systemd's socket activation (LISTEN_PID,
// LISTEN_FDS, LISTEN_FDNAMES: sd_listen_fds(3)) and its successor form, the sockets a
// predecessor handed over when it started this process (the same three variables, polybind's
// own, with the predecessor's pid: a parent cannot name its child's pid before it is spawned).
// Pure: the environment and pids are passed in.

import { ListenError } from "./errors.ts";

/** The first descriptor systemd (or a predecessor) passes. */
export const SD_LISTEN_FDS_START = 3;

/** The variables a predecessor sets for the successor it starts: its pid, the count, the names. */
export const PARENT_LISTEN = {
  pid: "POLYBIND_LISTEN_PID",
  fds: "POLYBIND_LISTEN_FDS",
  names: "POLYBIND_LISTEN_FDNAMES",
} as const;

/** Who passes the sockets, in messages: its address prefix, and what to do when it passed none. */
interface Source {
  readonly prefix: "sd-listen" | "parent-listen";
  readonly vars: { readonly pid: string; readonly fds: string; readonly names: string };
  readonly who: string;
  readonly hint: string;
}

const SYSTEMD: Source = {
  prefix: "sd-listen",
  vars: { pid: "LISTEN_PID", fds: "LISTEN_FDS", names: "LISTEN_FDNAMES" },
  who: "systemd",
  hint: "Start the server from a .socket unit or systemd-socket-activate",
};

const PARENT: Source = {
  prefix: "parent-listen",
  vars: PARENT_LISTEN,
  who: "the parent process",
  hint: "Start the server with startSuccessor() from the one it takes over from",
};

/** The descriptors `source` passed to the process whose id `pid` must match, all or those named `name`. */
function listenFds(
  source: Source,
  env: (name: string) => string | undefined,
  pid: number,
  name: string | undefined,
): { fd: number; name: string }[] {
  const address = name === undefined ? source.prefix : `${source.prefix}:${name}`;
  const listenPid = env(source.vars.pid);
  const count = Number(env(source.vars.fds) ?? "0");
  if (listenPid === undefined || !Number.isInteger(count) || count < 1) {
    throw new ListenError(
      `Cannot listen on ${address} as ${source.who} passed no sockets (${source.vars.fds} is not set). ${source.hint}`,
      { code: "ENOENT", address },
    );
  }
  if (Number(listenPid) !== pid) {
    throw new ListenError(
      `Cannot listen on ${address} as the sockets ${source.who} passed are for process ${listenPid}, not this one (${pid})`,
      { code: "ENOENT", address },
    );
  }
  const names = (env(source.vars.names) ?? "").split(":");
  const fds = Array.from({ length: count }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] ?? "unknown" }));
  const chosen = name === undefined ? fds : fds.filter((f) => f.name === name);
  if (chosen.length === 0) {
    throw new ListenError(
      `Cannot listen on ${address} as ${source.who} passed no socket of that name (names: ${names.join(", ")})`,
      { code: "ENOENT", address },
    );
  }
  return chosen;
}

/**
 * The descriptors systemd passed to this process, all or those named `name`.
 *
 * @param env Reads an environment variable.
 * @param pid This process's id: the sockets are ignored unless LISTEN_PID names it.
 * @param name Only descriptors with this name (LISTEN_FDNAMES), or all.
 * @returns The descriptor numbers and their names.
 * @throws {ListenError} ENOENT when no (matching) socket was passed to this process.
 */
export function systemdFds(
  env: (name: string) => string | undefined,
  pid: number,
  name: string | undefined,
): { fd: number; name: string }[] {
  return listenFds(SYSTEMD, env, pid, name);
}

/**
 * The descriptors a predecessor handed to this process when it started it, all or those named `name`.
 *
 * @param env Reads an environment variable.
 * @param ppid This process's parent's id: the sockets are ignored unless POLYBIND_LISTEN_PID names it.
 * @param name Only descriptors with this name (POLYBIND_LISTEN_FDNAMES), or all.
 * @returns The descriptor numbers and their names.
 * @throws {ListenError} ENOENT when no (matching) socket was handed to this process.
 */
export function parentFds(
  env: (name: string) => string | undefined,
  ppid: number,
  name: string | undefined,
): { fd: number; name: string }[] {
  return listenFds(PARENT, env, ppid, name);
}
