// A shared plan's sockets as a worker process has them before anything listens on them: the
// descriptors it inherited (POLYBIND_FDS) or copies received over IPC, for the runtime's own
// server to adopt (adapters/_adopt.ts), and the listener on those it could not.

import { adapter, type LentSocket } from "./_adapter.ts";
import { listenerViews, named } from "./_views.ts";
import type { ListenerPlan } from "./plan.ts";
import type { Listener } from "./types.ts";
import { cannotListen, FDS_VARIABLE, lentFds, SHARE_TIMEOUT_MS, shareKey } from "./workers.ts";

/**
 * The descriptors of a shared plan's sockets in this worker process, none listening yet:
 * inherited (named in POLYBIND_FDS), or copies received over IPC where the runtime tells a
 * received socket's descriptor. Undefined where neither: listenFromPlan is the way then.
 *
 * @param plan A shared plan, as the primary sent it.
 * @returns The sockets, or undefined.
 * @throws {ListenError} No socket arrived from the primary.
 * @example
 * ```ts ignore
 * const sockets = await lentDescriptors(plan);
 * if (sockets) console.log(sockets.map((s) => s.fd));
 * ```
 */
export async function lentDescriptors(plan: ListenerPlan): Promise<LentSocket[] | undefined> {
  const a = adapter();
  if (plan.strategy !== "shared" || !a.share) return undefined;
  const inherited = lentFds(a.platform.env(FDS_VARIABLE));
  const keys = Array.from({ length: plan.sockets }, (_, i) => shareKey(plan, i));
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
 * The listener on lent sockets of `plan` (some of its sockets, or all), listening on their
 * descriptors: how what the runtime's own server could not adopt is served.
 *
 * @param plan The shared plan.
 * @param sockets Its sockets, from lentDescriptors.
 * @returns The listener.
 * @throws {ListenError} The OS refused.
 * @example
 * ```ts ignore
 * const listener = await listenLent(plan, (await lentDescriptors(plan))!);
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
