// Address strings the way operators write them, to and from ServerConfig:
// "127.0.0.1:8000", ":8000", "[::1]:8000", "tcp://host:port", "unix:/run/app.sock", "/run/app.sock",
// "@name" (Linux abstract socket), "fd://3", "sd-listen", "sd-listen:NAME".

import { formatHostPort } from "./_address.ts";
import { DEFAULTS, show } from "./_config.ts";
import type { ServerConfig } from "./types.ts";

function bad(text: string, why: string): RangeError {
  return new RangeError(`Cannot parse address ${show(text)} as ${why}`);
}

function parsePort(text: string, port: string): number {
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw bad(text, `its port must be from 0 to 65535`);
  return Number(port);
}

function parseHostPort(text: string, rest: string): ServerConfig {
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0 || rest[close + 1] !== ":") throw bad(text, `an IPv6 address is written [address]:port`);
    const host = rest.slice(1, close);
    // Brackets hold an IPv6 address (RFC 3986): never empty, never a name or an IPv4 address.
    if (!host.includes(":")) throw bad(text, `brackets hold an IPv6 address, as in [::1]:8000`);
    return { host, port: parsePort(text, rest.slice(close + 2)) };
  }
  const colon = rest.lastIndexOf(":");
  if (colon < 0) throw bad(text, `a port is needed, as in "${rest}:8000"`);
  const host = rest.slice(0, colon);
  if (host.includes(":")) throw bad(text, `an IPv6 address is written [address]:port`);
  if (/[/\s@]/.test(host)) throw bad(text, `it is not host:port`);
  return { host: host === "" ? "0.0.0.0" : host, port: parsePort(text, rest.slice(colon + 1)) };
}

function parseUnix(text: string, path: string): ServerConfig {
  if (path.startsWith("///")) path = path.slice(2);
  if (path === "") throw bad(text, "a Unix socket path is needed after unix:");
  if (path.startsWith("@")) {
    if (path.length === 1) throw bad(text, "an abstract socket needs a name after @");
    return { uds: "\0" + path.slice(1) };
  }
  return { uds: path };
}

/**
 * Parses an address string into the {@linkcode ServerConfig} it means.
 *
 * | string | config |
 * | --- | --- |
 * | `127.0.0.1:8000`, `localhost:3000`, `tcp://host:8000` | `{ host, port }` |
 * | `:8000` | `{ host: "0.0.0.0", port: 8000 }` (all interfaces) |
 * | `[::1]:8000`, `[::]:0` | `{ host: "::1", port: 8000 }` |
 * | `unix:/run/app.sock`, `unix:./app.sock`, `/run/app.sock` | `{ uds }` |
 * | `@name`, `unix:@name` | `{ uds: "\0name" }`: a Linux abstract socket |
 * | `fd://3` | `{ fd: 3 }`: a socket inherited on descriptor 3 |
 * | `sd-listen`, `sd-listen:NAME` | `{ systemd: true }`, `{ systemd: "NAME" }`: socket activation |
 * | `parent-listen`, `parent-listen:NAME` | `{ parent: true }`, `{ parent: "NAME" }`: sockets a predecessor handed over |
 *
 * @param text The address.
 * @returns The config it means.
 * @throws {TypeError} `text` is not a string.
 * @throws {RangeError} `text` is not an address; the message quotes it.
 * @example
 * ```ts
 * import { parseAddress } from "../mod.ts";
 * console.assert(parseAddress("[::1]:8000").host === "::1");
 * console.assert(parseAddress("unix:/run/app.sock").uds === "/run/app.sock");
 * ```
 */
export function parseAddress(text: string): ServerConfig {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot parse address as it must be a string: current value is ${show(text)}`);
  }
  if (text.length === 0 || text.length > 4096 || /[\0\r\n]/.test(text)) throw bad(text, "it is not an address");
  for (const [prefix, field] of [["sd-listen", "systemd"], ["parent-listen", "parent"]] as const) {
    if (text === prefix) return { [field]: true };
    if (!text.startsWith(`${prefix}:`)) continue;
    const name = text.slice(prefix.length + 1);
    if (!/^[^\s:]+$/.test(name)) throw bad(text, `a socket name without ':' or spaces follows ${prefix}:`);
    return { [field]: name };
  }
  if (text.startsWith("fd://")) {
    const fd = text.slice(5);
    if (!/^\d{1,9}$/.test(fd)) throw bad(text, "a descriptor number follows fd://");
    return { fd: Number(fd) };
  }
  if (text.startsWith("unix:")) return parseUnix(text, text.slice(5));
  if (text.startsWith("/")) return { uds: text };
  if (text.startsWith("@")) return parseUnix(text, text);
  if (text.startsWith("tcp://")) return parseHostPort(text, text.slice(6).replace(/\/$/, ""));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw bad(text, "its scheme is not tcp://, unix: or fd://");
  return parseHostPort(text, text);
}

/**
 * Writes a config as an address string, the inverse of {@linkcode parseAddress}.
 *
 * @param config A config with `host`/`port`, `uds`, `fd`, `systemd` or `parent`.
 * @returns The address string.
 * @example
 * ```ts
 * import { formatAddress } from "../mod.ts";
 * console.assert(formatAddress({ host: "::1", port: 8000 }) === "[::1]:8000");
 * ```
 */
export function formatAddress(config: ServerConfig): string {
  if (config.fd !== undefined) return `fd://${config.fd}`;
  if (config.systemd !== undefined) return config.systemd === true ? "sd-listen" : `sd-listen:${config.systemd}`;
  if (config.parent !== undefined) return config.parent === true ? "parent-listen" : `parent-listen:${config.parent}`;
  if (config.uds !== undefined) {
    const uds = config.uds;
    if (uds.startsWith("\0")) return `@${uds.slice(1)}`;
    if (uds.startsWith("/")) return uds;
    // A relative file whose name starts with "@" is not an abstract socket.
    return uds.startsWith("@") ? `unix:./${uds}` : `unix:${uds}`;
  }
  const host = config.host ?? DEFAULTS.host;
  const port = config.port ?? DEFAULTS.port;
  // A host named like a prefix ("unix:80", "sd-listen:80") needs the scheme to stay a host.
  return /^(unix|sd-listen|parent-listen)$/.test(host) ? `tcp://${host}:${port}` : formatHostPort(host, port);
}
