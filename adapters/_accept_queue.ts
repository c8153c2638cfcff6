// Connections a runtime pushes (node:net's 'connection', Bun's open handler), queued for
// accept(): one implementation for the Node.js and Bun adapters.

import type { Conn } from "../src/types.ts";

/** Holds pushed connections until accept() takes them. */
export class AcceptQueue {
  #queue: Conn[] = [];
  #waiters: { resolve(c: Conn): void; reject(e: unknown): void }[] = [];
  #closed: Error | undefined;

  /** Called by the adapter with each new connection. */
  push(conn: Conn): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(conn);
    else this.#queue.push(conn);
  }

  /** The next connection; rejects once closed. */
  accept(): Promise<Conn> {
    const conn = this.#queue.shift();
    if (conn) return Promise.resolve(conn);
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Rejects waiting accepts and closes queued connections; true the first time only. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = new Error("Listener closed");
    for (const w of this.#waiters.splice(0)) w.reject(this.#closed);
    for (const c of this.#queue.splice(0)) c.close();
    return true;
  }
}
