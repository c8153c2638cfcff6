// The raw Deno side: the same work as bench/servers/poly.mjs written by hand on Deno.listen and
// Deno.listenDatagram. Each function binds, starts serving and returns what run.mjs needs.

import { CLOSE_RESPONSE, createScanner, HOST, indexResponse, RESPONSE } from "./_common.mjs";

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
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function serveOnce(conn, response) {
  const buf = new Uint8Array(4096);
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
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function acceptAll(listener, serve) {
  try {
    for await (const conn of listener) serve(conn);
  } catch {
    // Closed.
  }
}

/** Keep-alive HTTP through Deno.Conn read and write. */
export function rw() {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  acceptAll(listener, serveReadWrite);
  return listener.addr.port;
}

/** One request per connection. */
export function close() {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  acceptAll(listener, (conn) => serveOnce(conn, CLOSE_RESPONSE));
  return listener.addr.port;
}

/** UDP echo. */
export function udp() {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
  (async () => {
    for (;;) {
      const [data, from] = await socket.receive();
      socket.send(data, from).catch(() => {});
    }
  })();
  return socket.addr.port;
}

/** Four SO_REUSEPORT listeners on one port. */
export function balance() {
  const first = Deno.listen({ hostname: HOST, port: 0, reusePort: true });
  const listeners = [first];
  for (let i = 1; i < 4; i++) listeners.push(Deno.listen({ hostname: HOST, port: first.addr.port, reusePort: true }));
  listeners.forEach((l, i) => {
    const response = indexResponse(i);
    acceptAll(l, (conn) => serveOnce(conn, response));
  });
  return first.addr.port;
}

/** Binds `count` sockets as polybind would (reusePort: one each; else one), resolving with a closer. */
export function bindMany(count, reusePort) {
  const first = Deno.listen({ hostname: HOST, port: 0, ...(reusePort ? { reusePort } : {}) });
  const all = [first];
  for (let i = 1; reusePort && i < count; i++) {
    all.push(Deno.listen({ hostname: HOST, port: first.addr.port, reusePort }));
  }
  return Promise.resolve(() => {
    for (const l of all) l.close();
    return Promise.resolve();
  });
}

/** One bind and close. */
export function cycle() {
  Deno.listen({ hostname: HOST, port: 0 }).close();
  return Promise.resolve();
}
