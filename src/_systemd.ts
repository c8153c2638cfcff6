// systemd socket activation: which inherited descriptors are ours, from LISTEN_PID, LISTEN_FDS
// and LISTEN_FDNAMES (sd_listen_fds(3)). Pure: the environment and pid are passed in.

import { ListenError } from "./errors.ts";

/** The first descriptor systemd passes. */
export const SD_LISTEN_FDS_START = 3;

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
  const address = name === undefined ? "sd-listen" : `sd-listen:${name}`;
  const listenPid = env("LISTEN_PID");
  const count = Number(env("LISTEN_FDS") ?? "0");
  if (listenPid === undefined || !Number.isInteger(count) || count < 1) {
    throw new ListenError(
      `Cannot listen on ${address} as systemd passed no sockets (LISTEN_FDS is not set). Start the server from a .socket unit or systemd-socket-activate`,
      { code: "ENOENT", address },
    );
  }
  if (Number(listenPid) !== pid) {
    throw new ListenError(
      `Cannot listen on ${address} as the sockets systemd passed are for process ${listenPid}, not this one (${pid})`,
      { code: "ENOENT", address },
    );
  }
  const names = (env("LISTEN_FDNAMES") ?? "").split(":");
  const fds = Array.from({ length: count }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] ?? "unknown" }));
  const chosen = name === undefined ? fds : fds.filter((f) => f.name === name);
  if (chosen.length === 0) {
    throw new ListenError(
      `Cannot listen on ${address} as systemd passed no socket of that name (names: ${names.join(", ")})`,
      { code: "ENOENT", address },
    );
  }
  return chosen;
}
