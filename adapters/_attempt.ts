// Runs a synchronous bind (Deno.listen, Bun.listen) so that a throw becomes a rejection.

/** Calls `fn` and returns its result as a promise, rejected if `fn` throws. */
export function attempt<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}
