// What every benchmark server shares, polybind's and the raw ones alike: the fixed HTTP
// responses, the one request parser, the READY handshake with bench/run.mjs and the rules that
// make a server stop by itself.

import process from "node:process";

/** Every server binds here, on port 0. */
export const HOST = "127.0.0.1";

const encoder = new TextEncoder();

/** The keep-alive response, the same bytes for every request. */
export const RESPONSE = encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");

/** The response of the accept-path measure, after which the server closes the connection. */
export const CLOSE_RESPONSE = encoder.encode("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");

/** The balance measure's response: its one-byte body says which listener accepted. */
export const indexResponse = (i) =>
  encoder.encode(`HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n${i}`);

/**
 * A request counter for one connection: `scan(bytes, n)` returns how many requests ended
 * ("\r\n\r\n") in the first `n` bytes, carrying a partial match over to the next chunk.
 */
export function createScanner() {
  let state = 0; // 0: nothing, 1: "\r", 2: "\r\n", 3: "\r\n\r"
  return (bytes, n) => {
    let ended = 0;
    for (let i = 0; i < n; i++) {
      const b = bytes[i];
      if (b === 13) state = state === 2 ? 3 : 1;
      else if (b === 10 && state === 1) state = 2;
      else if (b === 10 && state === 3) {
        ended++;
        state = 0;
      } else state = 0;
    }
    return ended;
  };
}

/** The runtime running this server. */
export function runtime() {
  if (globalThis.Deno?.version !== undefined) return "deno";
  if (globalThis.Bun !== undefined) return "bun";
  return "node";
}

/** The server's options: one JSON argument, the last on the command line. */
export function options() {
  return JSON.parse(process.argv[process.argv.length - 1]);
}

/** Tells bench/run.mjs the server listens, and on which port. */
export function ready(info) {
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
}

/**
 * Makes the process end by itself: after `maxMs` at the latest, and as soon as bench/run.mjs
 * closes our stdin (it does when it stops us or dies).
 */
export function bound(maxMs) {
  setTimeout(() => process.exit(0), maxMs);
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}

/** Runs a forced garbage collection where the runtime exposes one. */
export function collectGarbage() {
  if (globalThis.Bun !== undefined) globalThis.Bun.gc(true);
  else globalThis.gc?.();
}
