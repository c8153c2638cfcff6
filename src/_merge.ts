// One source over several (a listener on every address a host resolves to): each take()
// waits on all of them, with at most one take outstanding per source.

import type { Source } from "./_shared.ts";

/**
 * Merges `sources` into one that yields whichever item comes first.
 *
 * @param sources What to merge (a single source is returned as it is).
 * @param discard Releases an item that arrives after the merged source closed.
 */
export function mergeSources<T>(sources: Source<T>[], discard: (item: T) => void): Source<T> {
  if (sources.length === 1) return sources[0]!;
  const ready: T[] = [];
  const armed = new Set<number>();
  let waiting: { resolve(item: T): void; reject(err: unknown): void } | undefined;
  let failure: { err: unknown } | undefined;
  let closed = false;

  const settle = (fn: (w: NonNullable<typeof waiting>) => void, otherwise: () => void) => {
    const w = waiting;
    waiting = undefined;
    if (w) fn(w);
    else otherwise();
  };
  const arm = (i: number) => {
    if (armed.has(i)) return;
    armed.add(i);
    sources[i]!.take().then(
      (item) => {
        armed.delete(i);
        if (closed) discard(item);
        else settle((w) => w.resolve(item), () => ready.push(item));
      },
      (err) => {
        armed.delete(i);
        if (!closed) settle((w) => w.reject(err), () => (failure = { err }));
      },
    );
  };

  return {
    take() {
      const item = ready.shift();
      if (item !== undefined) return Promise.resolve(item);
      if (failure) {
        const { err } = failure;
        failure = undefined;
        return Promise.reject(err);
      }
      return new Promise<T>((resolve, reject) => {
        waiting = { resolve, reject };
        sources.forEach((_, i) => arm(i));
      });
    },
    async close() {
      closed = true;
      settle((w) => w.reject(new Error("Merged source closed")), () => {});
      for (const item of ready.splice(0)) discard(item);
      await Promise.all(sources.map((s) => s.close()));
    },
  };
}
