// CRC32C (Castagnoli, RFC 4960 appendix B): the checksum a PROXY v2 header may carry in its
// CRC32C TLV. Table-driven, one byte at a time: headers are small.

const TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  TABLE[n] = c;
}

/**
 * Computes the CRC32C of `bytes`, continuing from `previous` (the CRC32C of the bytes before
 * them) as zlib's `crc32(crc, buf)` does.
 *
 * @param bytes The bytes.
 * @param previous The CRC32C of what came before.
 * @default previous 0
 * @returns The checksum, an unsigned 32-bit integer.
 * @example
 * ```ts
 * import { crc32c } from "./_crc32c.ts";
 * const bytes = new TextEncoder().encode("123456789");
 * console.assert(crc32c(bytes) === 0xe3069283);
 * console.assert(crc32c(bytes.subarray(4), crc32c(bytes.subarray(0, 4))) === 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  let c = ~previous;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
