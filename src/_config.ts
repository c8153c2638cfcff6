// Defaults and validation: turns a user's ServerConfig into a checked, normalized config.
// Pure: no sockets, no file system; bad input becomes a TypeError or RangeError naming the field.

import { isIPv4, isIPv6 } from "./_ip.ts";
import { checkProxyProtocol, type NormalizedProxyProtocol } from "./_proxy_options.ts";
import type { ServerConfig } from "./types.ts";

/** Defaults applied to every ServerConfig. */
export const DEFAULTS = Object.freeze({
  host: "127.0.0.1",
  port: 8000,
  backlog: 2048,
  udsMode: 0o660,
});

/** The largest backlog accepted (the kernel caps it further at net.core.somaxconn). */
export const MAX_BACKLOG = 65535;

/** How often, and how far apart, to try a bind again while its address is in use. */
export interface RetryOptions {
  /** Tries in all, from 1 (no retry) to 100. */
  attempts: number;
  /** Milliseconds between tries, from 0 to 60000. */
  delayMs: number;
}

/** A validated config: a TCP/UDP address, a Unix socket path, an inherited descriptor or systemd's sockets. */
export type NormalizedConfig =
  & (
    | { kind: "inet"; host: string; port: number }
    | { kind: "unix"; path: string; mode: number; abstract: boolean }
    | { kind: "fd"; fd: number }
    | { kind: "systemd"; name: string | undefined; from: "systemd" | "parent" }
  )
  & { backlog: number; retry: RetryOptions; proxy?: NormalizedProxyProtocol };

const NO_RETRY: RetryOptions = Object.freeze({ attempts: 1, delayMs: 0 });

/** Formats a value for an error message: strings quoted, others as JavaScript shows them. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" && Object.is(value, -0)) return "-0";
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

function checkInteger(field: string, value: unknown, min: number, max: number, hint?: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot listen as '${field}' must be a number: current value is ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = hint ?? `an integer from ${min} to ${max}`;
    throw new RangeError(`Cannot listen as '${field}' must be ${range}: current value is ${show(value)}`);
  }
  return value;
}

/** Longest host name DNS allows. */
const MAX_HOST = 253;

function checkHost(value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot listen as 'host' must be a string: current value is ${show(value)}`);
  }
  if (value.length === 0 || value.length > MAX_HOST || /[\s/\\?#@]/.test(value)) {
    throw new RangeError(
      `Cannot listen as 'host' must be a host name or IP address of 1 to ${MAX_HOST} characters: current value is ${
        show(value.length > 80 ? value.slice(0, 80) + "..." : value)
      }`,
    );
  }
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (bare.includes(":") && !isIPv6(bare)) {
    throw new RangeError(`Cannot listen as 'host' is not a valid IPv6 address: current value is ${show(value)}`);
  }
  if (/^[\d.]+$/.test(bare) && !isIPv4(bare)) {
    throw new RangeError(`Cannot listen as 'host' is not a valid IPv4 address: current value is ${show(value)}`);
  }
  return bare;
}

/** Longest Unix socket path in bytes, by OS (sun_path less its terminating NUL). */
export function maxSocketPath(os: string): number {
  return os === "linux" || os === "android" ? 107 : 103;
}

function checkPath(value: unknown, os: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot listen as 'uds' must be a string path: current value is ${show(value)}`);
  }
  if (value.length === 0) {
    throw new RangeError(`Cannot listen as 'uds' must be a non-empty path: current value is ""`);
  }
  if (value.lastIndexOf("\0") > 0) {
    throw new RangeError(`Cannot listen as 'uds' must not contain a NUL byte: current value is ${show(value)}`);
  }
  if (value.startsWith("\0") && os !== "linux" && os !== "android") {
    throw new RangeError(
      `Cannot listen as abstract Unix sockets ("@name") exist only on Linux, not ${os}: current value is ${
        show(value)
      }`,
    );
  }
  if (value === "\0") {
    throw new RangeError(`Cannot listen as an abstract Unix socket needs a name: current value is ${show(value)}`);
  }
  const bytes = new TextEncoder().encode(value).length;
  const max = maxSocketPath(os);
  if (bytes > max) {
    throw new RangeError(
      `Cannot listen as 'uds' is ${bytes} bytes long, over the ${max}-byte limit of ${os}: current value is ${
        show(value)
      }`,
    );
  }
  return value;
}

/**
 * Validates `config` and fills in defaults.
 *
 * @param config What the user asked for.
 * @param os The OS name, for the Unix socket path limit.
 * @returns The normalized config.
 * @throws {TypeError} A field has the wrong type.
 * @throws {RangeError} A field is out of range.
 */
export function normalizeConfig(config: ServerConfig, os: string): NormalizedConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new TypeError(`Cannot listen as 'config' must be an object: current value is ${show(config)}`);
  }
  const backlog = config.backlog === undefined
    ? DEFAULTS.backlog
    : checkInteger("backlog", config.backlog, 1, MAX_BACKLOG);
  const retry = config.retry === undefined ? NO_RETRY : checkRetry(config.retry);
  const proxy = checkProxyProtocol(config.proxyProtocol);
  const common = proxy === undefined ? { backlog, retry } : { backlog, retry, proxy };
  const mode = config.udsMode === undefined
    ? DEFAULTS.udsMode
    : checkInteger("udsMode", config.udsMode, 0, 0o777, "an integer from 0 to 0o777 (511)");
  checkOneAddress(config);
  if (config.fd !== undefined) {
    return { kind: "fd", fd: checkInteger("fd", config.fd, 0, 2 ** 31 - 1), ...common };
  }
  if (config.systemd !== undefined) {
    return { kind: "systemd", name: checkSystemd("systemd", config.systemd), from: "systemd", ...common };
  }
  if (config.parent !== undefined) {
    return { kind: "systemd", name: checkSystemd("parent", config.parent), from: "parent", ...common };
  }
  if (config.uds !== undefined) {
    const path = checkPath(config.uds, os);
    return { kind: "unix", path, mode, abstract: path.startsWith("\0"), ...common };
  }
  const host = config.host === undefined ? DEFAULTS.host : checkHost(config.host);
  const port = config.port === undefined ? DEFAULTS.port : checkInteger("port", config.port, 0, 65535);
  return { kind: "inet", host, port, ...common };
}

/** The fields that each say where to listen, in the order they are named in errors. */
const WHERE = ["fd", "systemd", "parent", "uds", "host", "port"] as const;

/** At most one way of saying where: `fd`, `systemd`, `parent`, `uds`, or `host` and `port` together. */
function checkOneAddress(config: ServerConfig): void {
  const set = WHERE.filter((field) => config[field] !== undefined);
  const ways = new Set(set.map((field) => (field === "port" ? "host" : field)));
  if (ways.size < 2) return;
  const [a, b] = set.filter((field, i) => i === 0 || (field !== "port" || !set.includes("host")));
  throw new RangeError(
    `Cannot listen as '${a}' and '${b}' both say where to listen: current values are ${show(config[a!])} and ${
      show(config[b!])
    }`,
  );
}

/** `systemd` or `parent`: true (all the sockets passed) or one name. */
function checkSystemd(field: "systemd" | "parent", value: unknown): string | undefined {
  if (value === true) return undefined;
  if (typeof value !== "string" || value.length === 0 || /[:\s]/.test(value)) {
    throw new TypeError(
      `Cannot listen as '${field}' must be true or a socket name without ':' or spaces: current value is ${
        show(value)
      }`,
    );
  }
  return value;
}

function checkRetry(value: unknown): RetryOptions {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`Cannot listen as 'retry' must be { attempts, delayMs }: current value is ${show(value)}`);
  }
  const { attempts, delayMs } = value as Partial<RetryOptions>;
  return {
    attempts: checkInteger("retry.attempts", attempts, 1, 100),
    delayMs: checkInteger("retry.delayMs", delayMs, 0, 60_000),
  };
}

/**
 * Checks an options object whose fields are optional booleans.
 *
 * @param options The options, or undefined.
 * @param names The fields to read.
 * @returns Each field, `false` when absent.
 * @throws {TypeError} `options` is not an object, or a field is not a boolean.
 */
export function checkFlags<K extends string>(options: unknown, names: readonly K[]): Record<K, boolean> {
  if (options !== undefined && (typeof options !== "object" || options === null || Array.isArray(options))) {
    throw new TypeError(`Cannot listen as 'options' must be an object: current value is ${show(options)}`);
  }
  const flags = {} as Record<K, boolean>;
  for (const name of names) {
    const value = (options as Record<string, unknown> | undefined)?.[name];
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(`Cannot listen as '${name}' must be a boolean: current value is ${show(value)}`);
    }
    flags[name] = value === true;
  }
  return flags;
}

/**
 * Checks a worker count.
 *
 * @param count The number of listeners asked for.
 * @returns `count`.
 * @throws {TypeError} `count` is not a number.
 * @throws {RangeError} `count` is not an integer from 1 to {@linkcode MAX_COUNT}.
 */
export function checkCount(count: unknown): number {
  if (typeof count !== "number") {
    throw new TypeError(`Cannot listen as 'count' must be a number: current value is ${show(count)}`);
  }
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be >= 1 (got ${show(count)})`);
  }
  if (count > MAX_COUNT) {
    throw new RangeError(`count must be <= ${MAX_COUNT} (got ${show(count)})`);
  }
  return count;
}

/** The most listeners one call creates: far above any core count, far below descriptor limits. */
export const MAX_COUNT = 1024;
