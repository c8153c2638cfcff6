// Version 1 of the PROXY protocol: one line of printable US-ASCII ending in CRLF, at most 107
// bytes, "PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>\r\n" or
// "PROXY UNKNOWN[ anything]\r\n". Read left to right and refused at the first field or byte that
// cannot be part of a valid line, so a longer prefix of the same bytes never changes the verdict.

import type { ProxyHeader, ProxyParseResult } from "./_proxy_header.ts";
import { formatIPv6, parseIPv4, parseIPv6 } from "./_proxy_ip.ts";

const V1_MAX_LENGTH = 107;
const PROXY = [0x50, 0x52, 0x4f, 0x58, 0x59];
const CR = 0x0d;
const LF = 0x0a;
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;
// Only ever given printable US-ASCII (0x20-0x7e), which every single-byte encoding reads alike.
const ascii = new TextDecoder("latin1");
const NAMES = ["protocol", "source address", "destination address", "source port", "destination port"];

const MORE: ProxyParseResult = Object.freeze({ kind: "more" });
const NONE: ProxyParseResult = Object.freeze({ kind: "none" });
const invalid = (reason: string): ProxyParseResult => ({ kind: "invalid", reason });
const isPort = (field: string) => PORT.test(field) && Number(field) <= 65535;

/**
 * Parses a version 1 line at the start of `bytes` (whose first byte is "P"), for
 * `parseProxyHeader`.
 *
 * @param bytes The bytes received so far (or a buffer that holds them first).
 * @param maxLength The longest header accepted; a line is never longer than 107 bytes anyway.
 * @param n How many of `bytes` have been received: nothing past them is read.
 * @returns What `parseProxyHeader` returns.
 * @example
 * ```ts
 * import { parseV1 } from "./_proxy_v1.ts";
 * const line = new TextEncoder().encode("PROXY TCP6 2001:db8::1 2001:db8::2 51000 443\r\n");
 * const result = parseV1(line, 107);
 * console.assert(result.kind === "header" && result.consumed === line.length);
 * console.assert(parseV1(new TextEncoder().encode("PROXY TCP5 "), 107).kind === "invalid");
 * ```
 */
export function parseV1(bytes: Uint8Array, maxLength: number, n: number = bytes.length): ProxyParseResult {
  for (let i = 1; i < 5 && i < n; i++) if (bytes[i] !== PROXY[i]) return NONE;
  const cap = Math.min(V1_MAX_LENGTH, maxLength);
  const limit = Math.min(n, cap);
  let end = 5;
  while (end < limit && bytes[end]! >= 0x20 && bytes[end]! <= 0x7e) end++;
  const stop = end < limit ? bytes[end] : undefined;
  const complete = stop === CR && end + 1 < n && bytes[end + 1] === LF && end + 2 <= cap;
  const fields = checkFields(ascii.decode(bytes.subarray(5, end)), complete);
  if (typeof fields === "string") return invalid(fields);
  if (fields !== undefined) return { kind: "header", header: fields, consumed: end + 2 };
  if (stop === CR && end + 2 <= cap) {
    return end + 1 === n ? MORE : invalid("Version 1 header has a CR that is not followed by LF");
  }
  if (stop === LF) return invalid("Version 1 header ends its line with LF alone, not CRLF");
  if (stop !== undefined && stop !== CR) {
    return invalid(
      `Version 1 header has a byte that is not printable US-ASCII: 0x${stop.toString(16).padStart(2, "0")}`,
    );
  }
  return n >= cap || stop === CR ? invalid(`Version 1 header has no CRLF in its first ${cap} bytes`) : MORE;
}

/**
 * Checks the fields of the line after "PROXY" (`text`), those known whole: all of them once the
 * line is `complete`, else all but the last. Returns a reason, the header once complete, or
 * `undefined` while the line may still become valid.
 */
function checkFields(text: string, complete: boolean): ProxyHeader | string | undefined {
  if (text === "") return complete ? "Version 1 header ends after PROXY" : undefined;
  if (text[0] !== " ") return "Version 1 header has no space after PROXY";
  const fields = text.slice(1).split(" ");
  const known = complete ? fields : fields.slice(0, -1);
  if (known.length === 0) return undefined;
  const protocol = known[0]!;
  if (protocol === "UNKNOWN") {
    // The spec: the receiver must ignore anything presented before the CRLF.
    return complete ? { version: 1, command: "local", transport: "unspec", tlvs: [] } : undefined;
  }
  const parse = protocol === "TCP4" ? parseIPv4 : parseIPv6;
  for (let k = 0; k < known.length && k < 5; k++) {
    const field = known[k]!;
    if (field === "") {
      return complete && k === known.length - 1
        ? "Version 1 header has a space before its CRLF"
        : "Version 1 header has two spaces in a row";
    }
    if (k === 0 && protocol !== "TCP4" && protocol !== "TCP6") {
      return `Version 1 protocol ${JSON.stringify(protocol)} is not TCP4, TCP6 or UNKNOWN`;
    }
    if ((k === 1 || k === 2) && parse(field) === undefined) {
      return `Version 1 ${NAMES[k]} ${JSON.stringify(field)} is not an ${
        protocol === "TCP4" ? "IPv4" : "IPv6"
      } address`;
    }
    if ((k === 3 || k === 4) && !isPort(field)) {
      return `Version 1 ${NAMES[k]} ${JSON.stringify(field)} is not a port from 0 to 65535 without leading zeros`;
    }
  }
  if (known.length > 5 || (!complete && known.length === 5)) {
    return "Version 1 header has a space after its destination port";
  }
  if (!complete) return undefined;
  if (known.length < 5) return `Version 1 ${protocol} header ends before its ${NAMES[known.length]}`;
  const address = (field: string) => protocol === "TCP4" ? field : formatIPv6(parseIPv6(field)!, 0);
  return {
    version: 1,
    command: "proxy",
    transport: protocol === "TCP4" ? "tcp4" : "tcp6",
    source: { hostname: address(known[1]!), port: Number(known[3]) },
    destination: { hostname: address(known[2]!), port: Number(known[4]) },
    tlvs: [],
  };
}
