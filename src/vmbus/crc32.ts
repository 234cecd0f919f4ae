// CRC-32 (IEEE 802.3, as zlib computes it) for the save stream's checksums.
//
// zlib's crc32 is native and fast on long inputs, but each call from JavaScript costs
// more than checksumming a short chunk here: a save writes a few chunks of ~60 bytes per
// packet in flight, and restoring checks each again. So short inputs are done with a
// slicing-by-4 table walk and long ones go to zlib. Both give the same value
// (test/vmbus/crc32.test.ts compares them).

import { crc32 as zlibCrc32 } from 'node:zlib';

/** Below this many bytes the table walk beats the native call. */
const NATIVE_FROM = 128;

// T[k][n]: the CRC of byte n followed by k zero bytes (slicing-by-4).
const T = Array.from({ length: 4 }, () => new Int32Array(256));
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T[0]![n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let k = 1; k < 4; k++) T[k]![n] = T[0]![T[k - 1]![n]! & 0xff]! ^ (T[k - 1]![n]! >>> 8);
}
const [T0, T1, T2, T3] = T as [Int32Array, Int32Array, Int32Array, Int32Array];

/** CRC-32 of bytes[start, end), as zlib.crc32 gives it (unsigned). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (end - start >= NATIVE_FROM) return zlibCrc32(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
  let c = -1;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = T3[c & 0xff]! ^ T2[(c >>> 8) & 0xff]! ^ T1[(c >>> 16) & 0xff]! ^ T0[c >>> 24]!;
  }
  for (; i < end; i++) c = T0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
