// Web streams over a connection's read and write, so that on each runtime the end of `readable`
// leaves writing open and closing `writable` only half-closes (Deno's own conn streams close the
// whole connection instead). `writableTo` serves every adapter; `readableFrom` is Deno's pull
// source (Node.js and Bun push into theirs, see _push_conn.ts). `peerGone` gives every adapter
// one meaning for a peer that reset: reading ends, without an error.

/**
 * A readable stream that pulls one chunk at a time from `next`.
 *
 * @param next The next chunk, or `null` at end of stream.
 * @param cancel Called when the reader cancels.
 */
export function readableFrom(
  next: () => Promise<Uint8Array | null>,
  cancel: () => void,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    // then() rather than an async function: one promise a chunk fewer.
    pull: (controller) =>
      next().then((chunk) => {
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      }),
    cancel,
  }, { highWaterMark: 1 });
}

/**
 * A writable stream over `write`, whose close half-closes the connection.
 *
 * @param write Writes one chunk whole.
 * @param closeWrite Sends end-of-stream.
 * @param abort Closes the connection.
 */
export function writableTo(
  write: (chunk: Uint8Array) => Promise<unknown>,
  closeWrite: () => Promise<void>,
  abort: () => void,
): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    // The promise is returned as it is: an async wrapper would cost one more microtask a chunk.
    write: (chunk) => write(chunk) as Promise<void>,
    close: closeWrite,
    abort,
  });
}

/** What read() does once `readable` has been taken: the stream owns the bytes from then on. */
export function readableTaken(): Promise<never> {
  return Promise.reject(new TypeError("Conn.read() cannot be used once Conn.readable has been taken"));
}

/** What the runtimes report when the peer has gone: it reset the connection, or closed it under a write. */
const PEER_GONE = new Set(["ECONNRESET", "EPIPE"]);

/**
 * Whether `err` says the peer has gone (a reset, as HAProxy's health checks close): reading then
 * is end of stream, as after a FIN, on every runtime. Writing still fails.
 *
 * @param err What a read or the socket failed with.
 */
export function peerGone(err: unknown): boolean {
  return PEER_GONE.has((err as { code?: unknown } | null)?.code as string);
}
