// The polybind side of every measure: the same work as bench/servers/raw_*.mjs, written on
// polybind's Listener, Conn and DatagramListener. Run by any of the three runtimes with one
// JSON argument: { mode, lib, maxMs, proxy, trusted }, where lib is the URL of polybind's entry
// point, and proxy (for the PROXY measure) wraps the listener with withProxyProtocol, trusting
// `trusted` (default: 127.0.0.1, where the clients connect from).

import {
  bound,
  CLOSE_RESPONSE,
  createScanner,
  HOST,
  indexResponse,
  options,
  ready,
  RESPONSE,
  runtime,
} from "./_common.mjs";

/** Keep-alive HTTP through Conn.read and Conn.write. */
async function serveReadWrite(conn) {
  const buf = new Uint8Array(4096);
  const scan = createScanner();
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      for (let k = scan(buf, n); k > 0; k--) await conn.write(RESPONSE);
    }
  } catch {
    // The client went away.
  } finally {
    conn.close();
  }
}

/** Keep-alive HTTP through Conn.readable and Conn.writable. */
async function serveStreams(conn) {
  const scan = createScanner();
  const writer = conn.writable.getWriter();
  try {
    for await (const chunk of conn.readable) {
      for (let k = scan(chunk, chunk.length); k > 0; k--) await writer.write(RESPONSE);
    }
  } catch {
    // The client went away.
  } finally {
    conn.close();
  }
}

/**
 * Read buffers of connections that ended, for the next ones: a server that accepts many short
 * connections reuses them (allocating a 4 KiB Uint8Array costs about 1 µs on Node.js and Deno).
 */
const buffers = [];

/** One request, one response, then close: the accept path. */
async function serveOnce(conn, response) {
  const buf = buffers.pop() ?? new Uint8Array(4096);
  const scan = createScanner();
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      if (scan(buf, n) > 0) {
        await conn.write(response);
        break;
      }
    }
  } catch {
    // The client went away.
  } finally {
    buffers.push(buf);
    conn.close();
  }
}

/** withProxyProtocol, from the entry point where it exports it, else from its module next to it. */
async function withProxyProtocol(pb, lib) {
  if (typeof pb.withProxyProtocol === "function") return pb.withProxyProtocol;
  const ext = lib.endsWith(".ts") ? ".ts" : ".js";
  return (await import(new URL(`./src/proxy${ext}`, lib).href)).withProxyProtocol;
}

async function acceptAll(listener, serve) {
  for await (const conn of listener) serve(conn);
}

async function main() {
  const { mode, lib, maxMs, proxy, trusted = [HOST] } = options();
  const pb = await import(lib);
  bound(maxMs);
  const caps = pb.capabilities();
  if (mode === "caps") {
    ready({ caps });
    return;
  }
  if (mode === "udp") {
    const udp = await pb.createUdpListener({ host: HOST, port: 0 });
    ready({ port: udp.addr.port, runtime: runtime() });
    for await (const [data, from] of udp) udp.send(data, from).catch(() => {});
    return;
  }
  if (mode === "balance") {
    const listeners = await pb.createListeners({ host: HOST, port: 0 }, 4);
    ready({ port: listeners[0].addr.port, runtime: runtime(), caps });
    await Promise.all(listeners.map((l, i) => {
      const response = indexResponse(i);
      return acceptAll(l, (conn) => serveOnce(conn, response));
    }));
    return;
  }
  const serve = {
    rw: serveReadWrite,
    stream: serveStreams,
    close: (c) => serveOnce(c, CLOSE_RESPONSE),
    // The client's address, as a server behind a balancer asks it (to log it, to limit it).
    "close-addr": (c) => {
      void c.remoteAddr;
      return serveOnce(c, CLOSE_RESPONSE);
    },
  }[mode];
  if (serve === undefined) throw new TypeError(`Unknown mode: ${mode}`);
  let listener = await pb.createListener({ host: HOST, port: 0 });
  if (proxy) listener = (await withProxyProtocol(pb, lib))(listener, { trusted });
  ready({ port: listener.addr.port, runtime: runtime() });
  await acceptAll(listener, serve);
}

await main();
