// IP addresses as the PROXY protocol carries them: strict text to bytes (v1 lines, and the
// encoder's input) and bytes to the text Node's net prints (`socket.remoteAddress`): dotted IPv4,
// IPv6 compressed as RFC 5952 writes it, with a dotted tail only for ::a.b.c.d and
// ::ffff:a.b.c.d (the rule of glibc's and Node's inet_ntop).

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const DEC_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parses a dotted-quad IPv4 address: four decimal numbers from 0 to 255, without leading zeros
 * (the PROXY protocol refuses them, as they could be read as octal).
 *
 * @param text The address.
 * @returns Its 4 bytes, or `undefined` if it is not such an address.
 * @example
 * ```ts
 * import { parseIPv4 } from "./_proxy_ip.ts";
 * console.assert(parseIPv4("192.168.0.1")?.join(".") === "192.168.0.1");
 * console.assert(parseIPv4("192.168.0.01") === undefined);
 * ```
 */
export function parseIPv4(text: string): Uint8Array | undefined {
  if (text.length < 7 || text.length > 15) return undefined;
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DEC_OCTET.test(part) || Number(part) > 255) return undefined;
    out[i] = Number(part);
  }
  return out;
}

/** Appends the 16-bit words of `groups` (hex, the last one possibly dotted IPv4) to `words`. */
function pushGroups(groups: string[], words: number[], last: boolean): boolean {
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (last && i === groups.length - 1 && group.includes(".")) {
      const v4 = parseIPv4(group);
      if (v4 === undefined) return false;
      words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (HEX_GROUP.test(group)) {
      words.push(parseInt(group, 16));
    } else {
      return false;
    }
  }
  return true;
}

/**
 * Parses an IPv6 address as RFC 4291 writes it: groups of 1 to 4 hex digits, at most one `::`,
 * and optionally a dotted IPv4 address as the last 32 bits. No zone (`%eth0`), no brackets.
 *
 * @param text The address.
 * @returns Its 16 bytes, or `undefined` if it is not such an address.
 * @example
 * ```ts
 * import { parseIPv6 } from "./_proxy_ip.ts";
 * console.assert(parseIPv6("::1")?.[15] === 1);
 * console.assert(parseIPv6("::ffff:1.2.3.4")?.[12] === 1);
 * console.assert(parseIPv6("1::2::3") === undefined);
 * ```
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head: number[] = [];
  const tail: number[] = [];
  if (halves.length === 1) {
    if (!pushGroups(text.split(":"), head, true) || head.length !== 8) return undefined;
  } else {
    if (halves[0] !== "" && !pushGroups(halves[0]!.split(":"), head, false)) return undefined;
    if (halves[1] !== "" && !pushGroups(halves[1]!.split(":"), tail, true)) return undefined;
    if (head.length + tail.length > 7) return undefined;
  }
  const out = new Uint8Array(16);
  head.forEach((word, i) => {
    out[2 * i] = word >> 8;
    out[2 * i + 1] = word & 0xff;
  });
  tail.forEach((word, i) => {
    const at = 16 - 2 * (tail.length - i);
    out[at] = word >> 8;
    out[at + 1] = word & 0xff;
  });
  return out;
}

/**
 * Writes the 4 bytes at `offset` as a dotted-quad IPv4 address.
 *
 * @param bytes The bytes.
 * @param offset Where the address starts.
 * @returns The address, as in `"192.168.0.1"`.
 * @example
 * ```ts
 * import { formatIPv4 } from "./_proxy_ip.ts";
 * console.assert(formatIPv4(new Uint8Array([127, 0, 0, 1]), 0) === "127.0.0.1");
 * ```
 */
export function formatIPv4(bytes: Uint8Array, offset: number): string {
  return DECIMAL[bytes[offset]!]! + "." + DECIMAL[bytes[offset + 1]!] + "." + DECIMAL[bytes[offset + 2]!] + "." +
    DECIMAL[bytes[offset + 3]!];
}

/** "0" to "255": a byte's text without converting a number each time (a connection's header has two addresses). */
const DECIMAL: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));

/**
 * Writes the 16 bytes at `offset` as an IPv6 address the way Node's net prints one: lower-case
 * hex without leading zeros, the first longest run of two or more zero groups as `::`, and a
 * dotted IPv4 tail for `::a.b.c.d` and `::ffff:a.b.c.d` (but `::1`, `::` and `::100` in hex).
 *
 * @param bytes The bytes.
 * @param offset Where the address starts.
 * @returns The address, as in `"2001:db8::1"`.
 * @example
 * ```ts
 * import { formatIPv6, parseIPv6 } from "./_proxy_ip.ts";
 * console.assert(formatIPv6(parseIPv6("2001:0db8:0:0:0:0:0:0001")!, 0) === "2001:db8::1");
 * console.assert(formatIPv6(parseIPv6("::ffff:7f00:1")!, 0) === "::ffff:127.0.0.1");
 * ```
 */
export function formatIPv6(bytes: Uint8Array, offset: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!);
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLen) [bestBase, bestLen] = [i, end - i];
    i = end;
  }
  if (bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
    return (bestLen === 5 ? "::ffff:" : "::") + formatIPv4(bytes, offset + 12);
  }
  if (bestLen < 2) return words.map((w) => w.toString(16)).join(":");
  const head = words.slice(0, bestBase).map((w) => w.toString(16)).join(":");
  const tail = words.slice(bestBase + bestLen).map((w) => w.toString(16)).join(":");
  return `${head}::${tail}`;
}
