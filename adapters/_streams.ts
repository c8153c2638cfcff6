// What the adapters' raw connections share: one meaning for a peer that has gone (reading ends,
// without an error, on every runtime), and the pull source of a runtime whose connections are
// read rather than pushed (Deno; Node.js and Bun push into theirs, see _push_conn.ts).

/**
 * A stream source that pulls one chunk at a time from `next`.
 *
 * @param next The next chunk, or `null` at end of stream.
 * @param cancel Called when the reader cancels.
 */
export function pullSource(
  next: () => Promise<Uint8Array | null>,
  cancel: () => void,
): { source: UnderlyingDefaultSource<Uint8Array>; highWaterMark: number } {
  return {
    highWaterMark: 1,
    source: {
      // then() rather than an async function: one promise a chunk fewer.
      pull: (controller) =>
        next().then((chunk) => {
          if (chunk === null) controller.close();
          else controller.enqueue(chunk);
        }),
      cancel,
    },
  };
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
