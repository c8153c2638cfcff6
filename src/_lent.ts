// A lent plan's sockets as a worker process has them before anything listens on them: the
// descriptors it inherited (POLYBIND_FDS) or copies received over IPC, for the runtime's own
// server to adopt (adapters/_adopt.ts), and the listener on those it could not.

import { adapter, type LentSocket } from "./_adapter.ts";
import { listenerViews, named } from "./_views.ts";
import type { ListenerPlan } from "./plan.ts";
import type { Listener } from "./types.ts";
import { isLent } from "./_plan.ts";
import { cannotListen, FDS_VARIABLE, lentFds, lentKeys, SHARE_TIMEOUT_MS } from "./workers.ts";

/**
 * The descriptors of the sockets lent to worker `index` for a plan, in this worker, none listening yet:
 * in a worker thread, copies of the primary's (`threadFds`, by key); in a process, inherited
 * (named in POLYBIND_FDS), or copies received over IPC where the runtime tells a received
 * socket's descriptor. Undefined where none: listenFromPlan is the way then.
 *
 * @param plan A lent plan (shared, or reuseport with `lent`), as the primary sent it.
 * @param index This worker's index.
 * @param threadFds A worker thread's: the primary's descriptors of its lent sockets, by key.
 * @returns The sockets, or undefined.
 * @throws {ListenError} No socket arrived from the primary.
 * @example
 * ```ts ignore
 * const sockets = await lentDescriptors(plan, 0);
 * if (sockets) console.log(sockets.map((s) => s.fd));
 * ```
 */
export async function lentDescriptors(
  plan: ListenerPlan,
  index: number,
  threadFds?: Record<string, number>,
): Promise<LentSocket[] | undefined> {
  const a = adapter();
  if (!isLent(plan) || !a.share) return undefined;
  const keys = lentKeys(plan, index);
  const duplicate = a.share.duplicate;
  if (threadFds !== undefined && duplicate !== undefined) {
    if (!keys.every((key) => threadFds[key] !== undefined)) return undefined;
    // Copies, this thread's to close: the primary's stay open for every generation after it.
    let copies: number[];
    try {
      copies = duplicate(keys.map((key) => threadFds[key]!));
    } catch (err) {
      throw cannotListen(plan, err);
    }
    return copies.map((fd) => ({ fd, backlog: plan.backlog, owned: true, sharedHere: true }));
  }
  const inherited = lentFds(a.platform.env(FDS_VARIABLE));
  if (keys.every((key) => inherited[key] !== undefined)) {
    return keys.map((key) => ({ fd: inherited[key]!, backlog: plan.backlog, owned: false }));
  }
  const receive = a.share.receiveDescriptor;
  if (!receive) return undefined;
  const fds = await Promise.all(keys.map((key) => receive(key, SHARE_TIMEOUT_MS))).catch((err) => {
    throw cannotListen(plan, err);
  });
  return fds.map((fd) => ({ fd, backlog: plan.backlog, owned: true }));
}

/**
 * The listener on lent sockets of `plan` (some of a worker's sockets, or all), listening on their
 * descriptors: how what the runtime's own server could not adopt is served.
 *
 * @param plan The lent plan.
 * @param sockets Its sockets, from lentDescriptors.
 * @returns The listener.
 * @throws {ListenError} The OS refused.
 * @example
 * ```ts ignore
 * const listener = await listenLent(plan, (await lentDescriptors(plan, 0))!);
 * ```
 */
export async function listenLent(plan: ListenerPlan, sockets: readonly LentSocket[]): Promise<Listener> {
  const a = adapter();
  const raws = await Promise.all(sockets.map((s) => a.listenFd({ fd: s.fd, backlog: s.backlog })))
    .catch((err) => {
      throw cannotListen(plan, err);
    });
  return listenerViews(raws.map((raw) => named(raw, plan.address)), 1)[0]!;
}
