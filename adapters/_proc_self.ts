// What /proc/self says of this process's descriptors and epoll registrations (Linux), read
// by adoption (adapters/_adopt.ts) to find a runtime's listening socket and check it again.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** One registration in an epoll instance, as /proc/self/fdinfo shows it. */
export interface EpollEntry {
  readonly fd: number;
  /** The events, and the token the runtime gets back with them. */
  readonly events: number;
  readonly data: bigint;
  /** The inode of the registered file (for a socket, the number in `socket:[...]`). */
  readonly ino: number;
}

/**
 * The registrations an epoll descriptor's /proc/self/fdinfo text lists (`tfd: 21 events: 19
 * data: 55d0c0 pos:0 ino:4d2 sdev:9`); lines of another form are left out.
 *
 * @param text The fdinfo text.
 * @returns Its registrations.
 * @example
 * ```ts
 * import { parseEpollInfo } from "./_proc_self.ts";
 * const [entry] = parseEpollInfo("tfd:       21 events:       19 data:     5a pos:0 ino:4d2 sdev:9\n");
 * console.assert(entry!.fd === 21 && entry!.events === 0x19 && entry!.data === 0x5an && entry!.ino === 0x4d2);
 * ```
 */
export function parseEpollInfo(text: string): EpollEntry[] {
  const entries: EpollEntry[] = [];
  const line = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\s+pos:\s*\d+\s+ino:\s*([0-9a-f]+)/gm;
  for (const m of text.matchAll(line)) {
    entries.push({
      fd: Number(m[1]),
      events: parseInt(m[2]!, 16),
      data: BigInt(`0x${m[3]}`),
      ino: parseInt(m[4]!, 16),
    });
  }
  return entries;
}

/**
 * This process's descriptors and what each is (`socket:[123]`, `anon_inode:[eventpoll]`).
 *
 * @example
 * ```ts
 * import { descriptors } from "./_proc_self.ts";
 * if (Deno.build.os === "linux") console.assert(descriptors().size > 0);
 * ```
 */
export function descriptors(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      out.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // Closed meanwhile (the descriptor of the listing itself).
    }
  }
  return out;
}

/**
 * The socket inode a descriptor's /proc/self/fd link names (`socket:[123]`), or undefined.
 *
 * @example
 * ```ts
 * import { socketInode } from "./_proc_self.ts";
 * console.assert(socketInode("socket:[123]") === 123 && socketInode("pipe:[4]") === undefined);
 * ```
 */
export function socketInode(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether `fd` is the socket of inode `ino` now.
 *
 * @example
 * ```ts
 * import { isSocket } from "./_proc_self.ts";
 * console.assert(!isSocket(-1, 1));
 * ```
 */
export function isSocket(fd: number, ino: number): boolean {
  try {
    return socketInode(readlinkSync(`/proc/self/fd/${fd}`)) === ino;
  } catch {
    return false;
  }
}

/**
 * Whether epoll descriptor `epfd` lists `fd` (inode `ino`) with `data` (and `events`, where given) now.
 *
 * @example
 * ```ts
 * import { isRegistered } from "./_proc_self.ts";
 * console.assert(!isRegistered(-1, 3, 1, 0n));
 * ```
 */
export function isRegistered(epfd: number, fd: number, ino: number, data: bigint, events?: number): boolean {
  try {
    return parseEpollInfo(readFileSync(`/proc/self/fdinfo/${epfd}`, "utf8")).some((e) =>
      e.fd === fd && e.ino === ino && e.data === data && (events === undefined || e.events === events)
    );
  } catch {
    return false;
  }
}
