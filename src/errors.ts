// ListenError: what the operating system refused, with a hint a person can act on.

/**
 * What the operating system refused when binding, with a hint a person can act on.
 *
 * @example
 * ```ts
 * import { createListener, ListenError } from "../mod.ts";
 * await using first = await createListener({ port: 0 });
 * if (first.addr.transport === "tcp") {
 *   try {
 *     await createListener({ port: first.addr.port });
 *   } catch (err) {
 *     console.assert(err instanceof ListenError && err.code === "EADDRINUSE");
 *   }
 * }
 * ```
 */
export class ListenError extends Error {
  /** The OS error code, such as `"EADDRINUSE"`, `"EACCES"` or `"ENOTFOUND"`. */
  readonly code: string;
  /** The address that was being bound: `host:port` or a socket path. */
  readonly address: string;

  /**
   * Creates a ListenError for what the OS refused at `address`.
   *
   * @param message The message, with a hint.
   * @param options The code, the address and the original error.
   */
  constructor(message: string, options: { code: string; address: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ListenError";
    this.code = options.code;
    this.address = options.address;
  }
}
