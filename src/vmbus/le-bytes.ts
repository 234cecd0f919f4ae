// Little-endian fields read and written straight on a byte array. A DataView per small
// record (a message header, a SaveBuf, a LibBuf) cost more than the record's own work,
// and these run several times per packet.

import { txFromHalves, txHi, txLo, type TxId } from './tx-id.ts';

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
 * A u64 from its 32-bit halves, exact (tx-id.ts): a number below 2^53, a bigint above.
 * Ids and counters are small: with a high half of 0 the result is the low half as it is,
 * which V8 keeps as a small integer; `lo + hi * 2^32` is always a double, and a double
 * stored in an object field or used as a Map key is boxed or hashed as one (per packet,
 * on every restore).
 */
export const u64FromHalves = txFromHalves;

export function getU64(b: Uint8Array, at: number): TxId {
  return txFromHalves(getU32(b, at), getU32(b, at + 4));
}

/** Writes `v` (a TxId: a safe integer or a bigint below 2^64) as a u64: low half, then high half. */
export function putU64(b: Uint8Array, at: number, v: TxId): void {
  putU32(b, at, txLo(v));
  putU32(b, at + 4, txHi(v));
}
