// The mapping from whatever a runtime threw to a ListenError, with a hint a person can act on,
// and the errors polybind makes itself (host not found, listener closed).

import { ListenError } from "./errors.ts";

/** Codes by the error class names Deno and others use instead of a `code`. */
const CODES_BY_NAME: Record<string, string> = {
  AddrInUse: "EADDRINUSE",
  AddrNotAvailable: "EADDRNOTAVAIL",
  PermissionDenied: "EACCES",
  NotCapable: "EACCES",
  NotFound: "ENOENT",
  AlreadyExists: "EEXIST",
  ConnectionRefused: "ECONNREFUSED",
  NotSupported: "ENOTSUP",
  InvalidData: "EINVAL",
};

/** The error code of anything a runtime threw, or `"EUNKNOWN"`. */
export function errorCode(err: unknown): string {
  if (typeof err === "object" && err !== null) {
    const { code, name, message } = err as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === "string" && /^E[A-Z0-9_]+$/.test(code)) return code;
    if (typeof name === "string" && name in CODES_BY_NAME) return CODES_BY_NAME[name]!;
    if (typeof message === "string") {
      const m = /\b(E[A-Z]{3,}[A-Z0-9_]*)\b/.exec(message);
      if (m) return m[1]!;
      if (/address already in use/i.test(message)) return "EADDRINUSE";
      if (/permission denied/i.test(message)) return "EACCES";
      if (/address not available/i.test(message)) return "EADDRNOTAVAIL";
      if (/failed to lookup|name or service not known|not known|no address/i.test(message)) return "ENOTFOUND";
    }
  }
  return "EUNKNOWN";
}

/** Whether an address (as in a ListenError) is a socket path rather than host:port. */
function isPath(address: string): boolean {
  return address.startsWith("/") || address.startsWith(".") || !/:\d+$/.test(address);
}

/**
 * Turns what a runtime threw while binding `address` into a ListenError with a hint.
 *
 * @param err What was thrown.
 * @param address `host:port` or a socket path.
 * @returns The ListenError (or `err` itself if it already is one).
 */
export function toListenError(err: unknown, address: string): ListenError {
  if (err instanceof ListenError) return err;
  const code = errorCode(err);
  return new ListenError(hintFor(code, address, err), { code, address, cause: err });
}

function hintFor(code: string, address: string, err: unknown): string {
  switch (code) {
    case "EADDRINUSE":
      return `Address ${address} is already in use. Is another server running?`;
    case "EACCES":
    case "EPERM":
      return isPath(address)
        ? `Permission denied creating ${address}. Check that this user can write to its folder.`
        : `Permission denied binding to ${address}. Try a port > 1024 or run with elevated permissions.`;
    case "EADDRNOTAVAIL":
      return `Address ${address} is not available on this machine. Check the host is one of its addresses.`;
    case "ENOTDIR":
      return `Cannot bind ${address} as part of its folder path is not a directory.`;
    case "ENOENT":
      return `Cannot bind ${address} as its directory does not exist. Create the directory first.`;
    default: {
      const detail = err instanceof Error ? err.message : String(err);
      return `Cannot bind ${address}: ${detail} (${code})`;
    }
  }
}

/** The error for a host name that does not resolve. */
export function hostNotFound(host: string, cause: unknown): ListenError {
  return new ListenError(`Cannot resolve host ${JSON.stringify(host)}. Check the name, or bind an IP address.`, {
    code: "ENOTFOUND",
    address: host,
    cause,
  });
}

/** The error `accept()`/`receive()` reject with once a listener is closed. */
export function closedError(address: string): ListenError {
  return new ListenError(`Listener on ${address} is closed`, { code: "ECLOSED", address });
}
