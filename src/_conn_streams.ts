// A Conn's `readable` and `writable`: the runtime's own web streams, with the path a chunk
// takes cut to the promises the Streams spec needs. `for await` reads each chunk with one read()
// of a reader; a writer's write() goes straight to the connection while nothing else is
// queued. What the streams promise (order, locking, backpressure, errors, close) is unchanged.

import type { Conn } from "./types.ts";

/** %AsyncIteratorPrototype%: what makes an iterator async-iterable, as the runtimes' own are. */
const ASYNC_ITERATOR = Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}).prototype) as object;

/** The result of next() after the end. */
const DONE = { done: true, value: undefined } as const;

/** Sets `key` of `target` to `value`, as a method of that object alone. */
function own(target: object, key: PropertyKey, value: unknown): void {
  Object.defineProperty(target, key, { value, configurable: true, writable: true });
}

/**
 * How `for await` takes the chunks of `stream`: one read() of its reader and one then() a chunk
 * (the runtimes' own iterators add an async function and a chain of promises a chunk). What the
 * spec says of the iterator holds: it locks the stream, releases it before the end or an error
 * is seen, and cancels the stream on `break` unless `preventCancel`.
 */
function iterator(stream: ReadableStream<Uint8Array>, preventCancel: boolean): AsyncIterator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  const release = () => {
    finished = true;
    reader.releaseLock();
  };
  // Typed by what it reads: the runtimes' type files name a read's result differently.
  const settled = (r: { done?: boolean }) => {
    if (r.done) release();
    return r as IteratorResult<Uint8Array>;
  };
  const failed = (err: unknown) => {
    release();
    throw err;
  };
  const it = Object.create(ASYNC_ITERATOR) as AsyncIterator<Uint8Array>;
  it.next = () => finished ? Promise.resolve(DONE) : reader.read().then(settled, failed);
  it.return = (value?: unknown) => {
    const done = { done: true, value } as IteratorResult<Uint8Array>;
    if (finished) return Promise.resolve(done);
    finished = true;
    const cancelled = preventCancel ? Promise.resolve() : reader.cancel(value);
    reader.releaseLock();
    return cancelled.then(() => done);
  };
  return it;
}

/** A ReadableStream over `source` whose `for await` is `iterator()`'s. */
export function connReadable(
  source: UnderlyingDefaultSource<Uint8Array>,
  highWaterMark: number,
): ReadableStream<Uint8Array> {
  const stream = new ReadableStream<Uint8Array>(source, { highWaterMark });
  const values = (options?: { preventCancel?: boolean }) => iterator(stream, options?.preventCancel === true);
  own(stream, "values", values);
  own(stream, Symbol.asyncIterator, values);
  return stream;
}

/**
 * A writable stream over `conn`, whose close half-closes the connection (Deno's own conn streams
 * close the whole connection instead).
 *
 * A writer's write() of bytes, when the stream has nothing queued, nothing in flight and is
 * neither closing nor errored, is the connection's write() with one then(): the stream's queue
 * would add three promises and its bookkeeping for a write that starts at once anyway. While that
 * write is in flight the next ones go through the stream (its sink waits for it), so `ready` and
 * `desiredSize` still tell backpressure; a failed write errors the stream as the sink's would;
 * close and abort come after it. Writes of pipeTo() take the stream's own path.
 */
export function connWritable(conn: Conn): WritableStream<Uint8Array> {
  let controller: WritableStreamDefaultController | undefined;
  /** The write in flight outside the stream's queue. */
  let direct: Promise<void> | undefined;
  /** Writes given to the stream's own path, not yet settled. */
  let queued = 0;
  /** False once closing, aborted or errored. */
  let open = true;
  const after = <T>(then: () => Promise<T>): Promise<T> => direct === undefined ? then() : direct.then(then);
  const stream = new WritableStream<Uint8Array>({
    start: (c) => void (controller = c),
    // The promise is returned as it is: an async wrapper would cost one more microtask a chunk.
    write: (chunk) => after(() => conn.write(chunk) as Promise<unknown> as Promise<void>),
    close: () => after(() => conn.closeWrite()),
    abort: () => conn.close(),
  });
  const written = () => void (direct = undefined);
  const failed = (err: unknown) => {
    direct = undefined;
    open = false;
    controller!.error(err);
    throw err;
  };
  const getWriter = stream.getWriter.bind(stream);
  own(stream, "getWriter", () => {
    const writer = getWriter();
    let released = false;
    const { write, close, abort, releaseLock } = writer;
    const viaStream = (chunk: Uint8Array) => {
      queued++;
      const p = write.call(writer, chunk);
      const settled = () => void queued--;
      p.then(settled, (err) => {
        settled();
        open = false;
        return err;
      });
      return p;
    };
    own(writer, "write", (chunk: Uint8Array) => {
      if (!open || released || direct !== undefined || queued > 0 || !(chunk instanceof Uint8Array)) {
        return viaStream(chunk);
      }
      return direct = conn.write(chunk).then(written, failed);
    });
    own(writer, "close", () => {
      open = false;
      return close.call(writer);
    });
    own(writer, "abort", (reason?: unknown) => {
      open = false;
      return abort.call(writer, reason);
    });
    own(writer, "releaseLock", () => {
      released = true;
      releaseLock.call(writer);
    });
    return writer;
  });
  return stream;
}
