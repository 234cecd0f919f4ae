// Little-endian fields read and written straight on a byte array. A DataView per small
// record (a message header, a SaveBuf, a LibBuf) cost more than the record's own work,
// and these run several times per packet.

export function putU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
}

export function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

export function getU16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

export function getU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/**
 * A u64 from its 32-bit halves, as a JS number (exact below 2^53). Ids and counters are
 * small: with a high half of 0 the result is the low half as it is, which V8 keeps as a
 * small integer; `lo + hi * 2^32` is always a double, and a double stored in an object
 * field or used as a Map key is boxed or hashed as one (per packet, on every restore).
 */
export function u64FromHalves(lo: number, hi: number): number {
  return hi === 0 ? lo : lo + hi * 0x100000000;
}

export function getU64(b: Uint8Array, at: number): number {
  return u64FromHalves(getU32(b, at), getU32(b, at + 4));
}

/** Writes `v` (an integer below 2^53) as a u64: low half, then high half. */
export function putU64(b: Uint8Array, at: number, v: number): void {
  putU32(b, at, v >>> 0);
  putU32(b, at + 4, Math.floor(v / 0x100000000));
}
