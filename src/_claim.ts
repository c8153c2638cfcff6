// Claiming an address for a SO_REUSEPORT group without a socket that listens: Linux lists every
// TCP socket of this network namespace in /proc/net/tcp{,6}, so a port someone has bound (or
// listens on) is seen without binding it, and no client ever connects to a socket of ours that
// nobody will serve (a plain bind that listens for a moment would accept, then reset, them).

import type { Platform } from "./_adapter.ts";

/** TCP states in /proc/net/tcp: 0A listening, 07 closed but bound (or not yet listening). */
const HOLDING = new Set(["0A", "07"]);

/** An address of /proc/net/tcp ("0100007F" or 32 hex digits), in the usual text form. */
function decode(hex: string): string {
  const bytes: number[] = [];
  // Each 32-bit word is in host order (little-endian on every Linux polybind runs on).
  for (let w = 0; w < hex.length; w += 8) {
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(hex.slice(w + b, w + b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join(".");
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
  if (mapped) return bytes.slice(12).join(".");
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // The WHATWG URL parser writes IPv6 the canonical way (RFC 5952: the longest run of zeros as ::).
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

const WILDCARDS = new Set(["0.0.0.0", "::"]);

/** Whether a socket bound to `held` keeps a plain bind of `host` off the same port. */
function overlaps(held: string, host: string): boolean {
  const canonical = host.includes(":") ? new URL(`http://[${host}]`).hostname.slice(1, -1) : host;
  return held === canonical || WILDCARDS.has(held) || WILDCARDS.has(canonical);
}

/**
 * Who holds `port` on `host`, as /proc/net/tcp and /proc/net/tcp6 say: the address of a socket
 * that would make a plain bind fail, null when nobody, undefined where the files cannot be read
 * (not Linux: the caller claims with a bind instead).
 */
export async function holderOf(platform: Platform, host: string, port: number): Promise<string | null | undefined> {
  const tables = await Promise.all(["/proc/net/tcp", "/proc/net/tcp6"].map((f) => platform.readText(f)));
  if (tables[0] === null) return undefined;
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of tables) {
    for (const line of (table ?? "").split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || !state || !HOLDING.has(state)) continue;
      const [hexAddr, p] = local.split(":");
      if (p !== hexPort || hexAddr === undefined) continue;
      const held = decode(hexAddr);
      if (overlaps(held, host)) return held;
    }
  }
  return null;
}
