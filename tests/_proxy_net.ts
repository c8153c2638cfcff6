// Helpers of the PROXY protocol tests on sockets: headers to send, node:net clients that send
// them (from a chosen local address), and a server that answers each connection with what its
// Conn says (addresses, what the header said, the first line it read).

import { connect, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import {
  type Addr,
  buildProxyHeader,
  type Conn,
  getAlpn,
  getAuthority,
  getCrc32c,
  getUniqueId,
  type Listener,
  type ProxyHeader,
} from "../mod.ts";

/** A v1 or v2 PROXY command over TCP4 from 203.0.113.7:51000 to 192.0.2.1:443, or as given. */
export function tcpHeader(version: 1 | 2, overrides: Partial<ProxyHeader> = {}): Uint8Array {
  return buildProxyHeader({
    version,
    command: "proxy",
    transport: "tcp4",
    source: { hostname: "203.0.113.7", port: 51000 },
    destination: { hostname: "192.0.2.1", port: 443 },
    tlvs: [],
    ...overrides,
  } as ProxyHeader);
}

/** One client: what it sent, and everything the server sent back once the connection has closed. */
export interface Talk {
  readonly socket: Socket;
  /** Resolves once connected, with the client's own port. */
  readonly connected: Promise<number>;
  /** Resolves at close with what came back ("" if the server closed without a word). */
  readonly reply: Promise<string>;
}

/**
 * Connects to `to` (a port on 127.0.0.1, or a Unix socket path), writes `chunks` in order (each
 * its own write), and half-closes if `end`. A reset by the server ends the reply like a close.
 */
export function talk(
  to: number | string,
  chunks: (Uint8Array | string)[],
  options: { localAddress?: string; host?: string; end?: boolean } = {},
): Talk {
  const socket = typeof to === "number"
    ? connect({ port: to, host: options.host ?? "127.0.0.1", localAddress: options.localAddress })
    : connect({ path: to });
  socket.setNoDelay(true);
  const parts: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => parts.push(chunk));
  socket.on("error", () => {}); // ECONNRESET: the server closed with bytes unread.
  const connected = new Promise<number>((resolve) =>
    socket.once("connect", () => {
      resolve(socket.localPort ?? 0);
      for (const chunk of chunks) socket.write(chunk);
      if (options.end) socket.end();
    })
  );
  const reply = new Promise<string>((resolve) => socket.once("close", () => resolve(Buffer.concat(parts).toString())));
  return { socket, connected, reply };
}

/** What the test server says about one Conn. */
export interface Seen {
  remote: Addr;
  local: Addr;
  proxy?: {
    version: number;
    command: string;
    transport: string;
    via: Addr;
    alpn?: string;
    authority?: string;
    uniqueId?: string;
    crc32c?: number;
  };
  first: string;
}

/** Reads up to and including the first "\n" (or to the end) through read() or readable. */
async function firstLine(conn: Conn, mode: "read" | "stream"): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  if (mode === "stream") {
    const reader = conn.readable.getReader();
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    reader.releaseLock();
    return text;
  }
  const buf = new Uint8Array(1024);
  while (!text.includes("\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
  return text;
}

/** What a Conn says, as the test server sends it back. */
export function describeConn(conn: Conn, first: string): Seen {
  const p = conn.proxy;
  return {
    remote: conn.remoteAddr,
    local: conn.localAddr,
    ...(p === undefined ? {} : {
      proxy: {
        version: p.version,
        command: p.command,
        transport: p.transport,
        via: p.via.remoteAddr,
        alpn: getAlpn(p),
        authority: getAuthority(p),
        uniqueId: getUniqueId(p) === undefined ? undefined : new TextDecoder().decode(getUniqueId(p)),
        crc32c: getCrc32c(p),
      },
    }),
    first,
  };
}

/**
 * Serves `listener` until it closes: each Conn's first line is read (through read() or
 * `readable`), then a JSON line saying what the Conn is goes back (through write() or
 * `writable`), then the write side is closed and the Conn with it. `served` lists them.
 */
export async function serveSeen(listener: Listener, served: Seen[], mode: "read" | "stream" = "read"): Promise<void> {
  for await (const conn of listener) {
    void (async () => {
      try {
        const seen = describeConn(conn, await firstLine(conn, mode));
        served.push(seen);
        const bytes = new TextEncoder().encode(JSON.stringify(seen) + "\n");
        if (mode === "stream") {
          const writer = conn.writable.getWriter();
          await writer.write(bytes);
          await writer.close();
        } else {
          await conn.write(bytes);
          await conn.closeWrite();
        }
      } catch {
        // The client went away.
      } finally {
        conn.close();
      }
    })();
  }
}

/** The reply of the test server, parsed. */
export function parseSeen(reply: string): Seen {
  return JSON.parse(reply) as Seen;
}

/** Waits until `condition()` holds, checking every 5 ms, for at most `ms`. */
export async function until(condition: () => boolean, ms = 5000, what = "a condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
