// Views over one source of items (accepted connections or datagrams): each view takes items in
// turn, may close on its own, and the source closes when the last view closes.

/** Something that yields items one at a time and can be closed. */
export interface Source<T> {
  take(): Promise<T>;
  /** take() with callbacks (RawListener's acceptWith), where the source has them. */
  takeWith?(ok: (item: T) => void, fail: (err: unknown) => void): void;
  close(): Promise<void>;
}

/** The callbacks of a takeWith(): `ok` with the item, `fail` with the error. */
interface TakeCallbacks<T> {
  ok(item: T): void;
  fail(err: unknown): void;
}

/** One consumer's handle on a shared source. */
export interface View<T> {
  next(): Promise<T>;
  /** next() as an iterator result: done once the view is closed, where next() would reject. */
  step(): Promise<IteratorResult<T, undefined>>;
  close(): Promise<void>;
  /**
   * next() with callbacks, no promise: `ok` with the item (at once where one is queued), `fail`
   * where next() would reject. Only the sole view of a source that has takeWith has it.
   */
  takeWith?(ok: (item: T) => void, fail: (err: unknown) => void): void;
  readonly closed: boolean;
  /**
   * Since when a next() has been waiting with nothing to take (undefined when none waits): kept
   * by the sole view of a source, where it tells that the socket's queue is empty.
   */
  readonly idleSince?: number;
}

/** The result of an iteration that has ended. */
export const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** `source.take()`, with a synchronous throw turned into a rejection. */
function takeFrom<T>(source: Source<T>): Promise<T> {
  try {
    return source.take();
  } catch (err) {
    return Promise.reject(err);
  }
}

const yielded = <T>(value: T): IteratorYieldResult<T> => ({ value, done: false });

interface Waiter<T> {
  resolve(item: T): void;
  reject(err: unknown): void;
  owner: number;
}

/**
 * Splits `source` into `count` views. Only one `take()` is ever outstanding, so runtimes that
 * refuse concurrent accepts on one socket are safe; items go to waiting views in arrival order.
 *
 * @param source What to share.
 * @param count How many views.
 * @param closedError Makes the error a closed view's `next()` rejects with.
 * @param discard Releases an item nobody will take (a connection that arrived as the last view closed).
 * @returns The views.
 */
export function shareSource<T>(
  source: Source<T>,
  count: number,
  closedError: () => Error,
  discard: (item: T) => void,
): View<T>[] {
  if (count === 1) return [soleView(source, closedError, discard)];
  const waiters: Waiter<T>[] = [];
  const ready: T[] = [];
  const open = new Array<boolean>(count).fill(true);
  let live = count;
  let pumping = false;
  let sourceClosed: Promise<void> | undefined;

  // One take() at a time, chained with then() rather than an async loop: an item costs the
  // source's promise and the waiter's, with no promise of the pump's own between them.
  const pump = (): void => {
    if (pumping || waiters.length === 0 || sourceClosed !== undefined) return;
    pumping = true;
    takeFrom(source).then(
      (item) => {
        pumping = false;
        const waiter = waiters.shift();
        if (waiter) waiter.resolve(item);
        else if (sourceClosed === undefined) ready.push(item);
        else discard(item);
        pump();
      },
      (err) => {
        pumping = false;
        if (sourceClosed !== undefined) return;
        waiters.shift()?.reject(err);
        pump();
      },
    );
  };

  const makeView = (index: number): View<T> => ({
    get closed() {
      return !open[index];
    },
    step() {
      return this.next().then(yielded, (err) => {
        if (!open[index]) return DONE;
        throw err;
      });
    },
    next() {
      if (!open[index]) return Promise.reject(closedError());
      const item = ready.shift();
      if (item !== undefined) return Promise.resolve(item);
      return new Promise<T>((resolve, reject) => {
        waiters.push({ resolve, reject, owner: index });
        pump();
      });
    },
    close() {
      if (!open[index]) return sourceClosed ?? Promise.resolve();
      open[index] = false;
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.owner === index) waiters.splice(i, 1)[0]!.reject(closedError());
      }
      if (--live > 0) return Promise.resolve();
      sourceClosed = source.close();
      for (const item of ready.splice(0)) discard(item);
      return sourceClosed;
    },
  });

  return Array.from({ length: count }, (_, i) => makeView(i));
}

/**
 * The one view of a source nobody shares: next() and step() take from the source itself, one
 * take at a time (a call waits for the one before), with one then() an item and no pump between.
 */
function soleView<T>(source: Source<T>, closedError: () => Error, discard: (item: T) => void): View<T> {
  let open = true;
  let sourceClosed: Promise<void> | undefined;
  let waiting = 0;
  let idleSince: number | undefined;
  let last: Promise<unknown> | undefined;

  const settled = () => {
    idleSince = --waiting === 0 ? undefined : Date.now();
  };
  /** Takes one item, handed on as `ok(item)`; once closed, the result is `ended()`. */
  const take = <R>(ok: (item: T) => R, ended: () => R): Promise<R> => {
    if (!open) return Promise.resolve().then(ended);
    if (waiting++ === 0) idleSince = Date.now();
    const once = (): Promise<R> =>
      takeFrom(source).then((item) => {
        settled();
        if (open) return ok(item);
        discard(item);
        return ended();
      }, (err) => {
        settled();
        if (open) throw err;
        return ended();
      });
    const result = waiting === 1 || last === undefined ? once() : last.then(once, once);
    last = result;
    return result;
  };
  const rejectClosed = (): never => {
    throw closedError();
  };
  const next = () => take((item) => item, rejectClosed);

  // takeWith's callbacks around its caller's, made once for the caller (a listener has one).
  let wrapped: (TakeCallbacks<T> & { for: TakeCallbacks<T> }) | undefined;
  const around = (
    ok: TakeCallbacks<T>["ok"],
    fail: TakeCallbacks<T>["fail"],
  ): TakeCallbacks<T> & { for: TakeCallbacks<T> } => {
    if (wrapped?.for.ok === ok && wrapped.for.fail === fail) return wrapped;
    return wrapped = {
      for: { ok, fail },
      ok(item) {
        settled();
        if (open) return ok(item);
        discard(item);
        fail(closedError());
      },
      fail(err) {
        settled();
        fail(open ? err : closedError());
      },
    };
  };
  const takeWith = source.takeWith && ((ok: TakeCallbacks<T>["ok"], fail: TakeCallbacks<T>["fail"]): void => {
    if (!open) return fail(closedError());
    // Behind a take in progress: in its turn.
    if (waiting > 0) return void next().then(ok, fail);
    waiting = 1;
    idleSince = Date.now();
    const own = around(ok, fail);
    source.takeWith!(own.ok, own.fail);
  });

  return {
    get closed() {
      return !open;
    },
    get idleSince() {
      return idleSince;
    },
    next,
    ...(takeWith ? { takeWith } : {}),
    step: () => take<IteratorResult<T, undefined>>(yielded, () => DONE),
    close() {
      if (open) {
        open = false;
        sourceClosed = source.close();
      }
      return sourceClosed!;
    },
  };
}
