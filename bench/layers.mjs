// The cost of polybind's own layers per accepted connection or received datagram, without
// sockets: a fake source pushes plain objects, taken through shareSource and wrapListener the
// way a Listener takes connections, with `for await`. Deterministic where the socket measures
// are noisy; use it to compare two checkouts. Plain Node.js ESM over a tsc build of `mod.ts`.
// Usage: npm run build && node bench/layers.mjs [--lib dist] [--items N] [--rounds R]

import process from "node:process";
import { pathToFileURL } from "node:url";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { lib: { type: "string" }, items: { type: "string" }, rounds: { type: "string" } },
});
const lib = resolve(values.lib ?? join(import.meta.dirname, "..", "dist"));
const ITEMS = Number(values.items ?? 300_000);
const ROUNDS = Number(values.rounds ?? 7);
const { shareSource } = await import(pathToFileURL(join(lib, "src", "_shared.js")).href);
const { wrapListener } = await import(pathToFileURL(join(lib, "src", "_wrap.js")).href);

/** A source like an adapter's accept queue: pushed items, one waiter at a time. */
function pushedSource() {
  let waiter;
  const queue = [];
  return {
    push(item) {
      if (waiter === undefined) queue.push(item);
      else {
        const w = waiter;
        waiter = undefined;
        w(item);
      }
    },
    take: () => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((r) => (waiter = r)),
    close: () => Promise.resolve(),
  };
}

/** Nanoseconds an item, `views` views of one source (0: none), items pushed 64 per event-loop turn. */
async function round(views) {
  const source = pushedSource();
  // 0 views: the source taken bare in a loop, the floor of this harness.
  const bare = {
    close: () => Promise.resolve(),
    [Symbol.asyncIterator]: () => ({ next: () => source.take().then((value) => ({ value, done: false })) }),
  };
  const listeners = views === 0 ? [bare] : shareSource(source, views, () => new Error("closed"), () => {}).map((
    view,
  ) => wrapListener(view, [{ transport: "tcp", hostname: "127.0.0.1", port: 1 }], null, views > 1));
  let got = 0;
  let done;
  const all = new Promise((r) => (done = r));
  for (const l of listeners) {
    (async () => {
      for await (const _ of l) if (++got === ITEMS) done();
    })();
  }
  const start = performance.now();
  for (let i = 0; i < ITEMS; i++) {
    source.push({ i });
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  await all;
  const ns = (performance.now() - start) * 1e6 / ITEMS;
  await Promise.all(listeners.map((l) => l.close()));
  return ns;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const views of [0, 1, 4]) {
  await round(views); // warm-up
  const ns = [];
  for (let r = 0; r < ROUNDS; r++) ns.push(await round(views));
  process.stdout.write(`${views} view(s): ${median(ns).toFixed(0)} ns an item (median of ${ROUNDS}) from ${lib}\n`);
}
