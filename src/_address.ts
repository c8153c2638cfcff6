// Addresses as people read them, one way everywhere: host and port (IPv6 in brackets), Unix
// paths (abstract sockets as @name), plan and listener addresses; and a config from a string.

import { parseAddress } from "./address.ts";
import type { Addr, NetAddr, ServerConfig } from "./types.ts";

/** Formats host and port as an address, with brackets for IPv6. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An address as people read it: `host:port` (IPv6 in brackets), a socket path, or `@name`. */
export function describeAddr(addr: Addr | NetAddr): string {
  if (addr.transport !== "unix") return formatHostPort(addr.hostname, addr.port);
  return addr.path.startsWith("\0") ? `@${addr.path.slice(1)}` : addr.path;
}

/** A config from a string or a config object. */
export function toConfig(config: ServerConfig | string): ServerConfig {
  return typeof config === "string" ? parseAddress(config) : config;
}
