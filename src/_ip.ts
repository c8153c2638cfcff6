// IP address literals as RFC 3986 writes them: pure checks, no DNS.

/** Whether `s` is a dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && (p === "0" || !p.startsWith("0")));
}

/** Whether `s` is an IPv6 address as RFC 3986 writes it (optionally with a `%zone`). */
export function isIPv6(s: string): boolean {
  const [addr, zone, ...rest] = s.split("%");
  if (rest.length > 0 || addr === undefined) return false;
  if (zone !== undefined && !/^[\w.~-]+$/.test(zone)) return false;
  let body = addr;
  const lastColon = body.lastIndexOf(":");
  if (lastColon < 0) return false;
  const tail = body.slice(lastColon + 1);
  if (tail.includes(".")) {
    // An embedded IPv4 address stands for the last two groups.
    if (!isIPv4(tail)) return false;
    body = body.slice(0, lastColon + 1) + "0:0";
  }
  const hex = (g: string) => /^[0-9a-fA-F]{1,4}$/.test(g);
  const halves = body.split("::");
  if (halves.length > 2) return false;
  if (halves.length === 1) {
    const groups = body.split(":");
    return groups.length === 8 && groups.every(hex);
  }
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const end = halves[1] === "" ? [] : halves[1]!.split(":");
  return head.every(hex) && end.every(hex) && head.length + end.length <= 7;
}

/** Whether `s` is an IP address literal (no DNS needed). */
export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** The family of an IP address as node:net names it: `"IPv6"` or `"IPv4"`. */
export function ipFamily(address: string): "IPv4" | "IPv6" {
  return address.includes(":") ? "IPv6" : "IPv4";
}
