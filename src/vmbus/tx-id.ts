// Transaction ids: the ring descriptor's trans_id and the protocol's tx are u64 fields
// (vmbus-ring-format section 3; lab/drivers/PROTOCOL.md). Linux guests have used kernel
// addresses as request ids, so an id above 2^53 is real input, and a double would round
// it (0xFFFFFFFFFFFFFFFF read as 2^64).
//
// An id is a TxId: a JS number while it is at most 2^53 - 1 (every id the emulator
// hands out in practice, kept as a small integer on the hot paths), a bigint above.
// Invariant: every TxId is in canonical form (number iff <= Number.MAX_SAFE_INTEGER),
// so `===`, Map keys and the TransactionTable see one value per id.

export type TxId = number | bigint;

export const U64_MAX = 0xffffffffffffffffn;
const TWO_32 = 0x100000000;
/** The first id that is held as a bigint. */
const FIRST_BIG = 1n << 53n;

/** A u64 from its 32-bit halves, exact: a number below 2^53, a bigint from 2^53 on. */
export function txFromHalves(lo: number, hi: number): TxId {
  if (hi === 0) return lo;
  // hi < 2^21 <=> the value < 2^53.
  if (hi < 0x200000) return lo + hi * TWO_32;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The low 32 bits of an id, as an unsigned number. */
export function txLo(v: TxId): number {
  return typeof v === 'number' ? v >>> 0 : Number(v & 0xffffffffn);
}

/** The high 32 bits of an id, as an unsigned number. */
export function txHi(v: TxId): number {
  return typeof v === 'number' ? (v > 0xffffffff ? (v / TWO_32) >>> 0 : 0) : Number(v >> 32n);
}

/** Canonical form of an integer id in [0, 2^64): a number up to 2^53 - 1, else a bigint. Throws otherwise. */
export function toTxId(v: number | bigint | string): TxId {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`transaction id ${v} is not an exact integer in [0, 2^53)`);
    return v;
  }
  const b = typeof v === 'bigint' ? v : BigInt(v);
  if (b < 0n || b > U64_MAX) throw new RangeError(`transaction id ${b} is outside [0, 2^64)`);
  return b < FIRST_BIG ? Number(b) : b;
}

/** Whether `v` is a TxId in canonical form. */
export function isTxId(v: unknown): v is TxId {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0;
  return typeof v === 'bigint' && v >= FIRST_BIG && v <= U64_MAX;
}

/** The id after `v`, wrapping from 2^64 - 1 to 0 as a u64 counter does. */
export function nextTxId(v: TxId): TxId {
  if (typeof v === 'number') return v < Number.MAX_SAFE_INTEGER ? v + 1 : FIRST_BIG;
  return v === U64_MAX ? 0 : v + 1n;
}

/** Orders two ids (negative, zero, positive), exactly for any mix of forms. */
export function compareTx(a: TxId, b: TxId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `v mod m` for a small positive `m`, as a number. */
export function txMod(v: TxId, m: number): number {
  return typeof v === 'number' ? v % m : Number(v % BigInt(m));
}

/** `v + n` for a small non-negative `n`, wrapping at 2^64 as a u64 counter does. */
export function txAdd(v: TxId, n: number): TxId {
  if (typeof v === 'number' && v + n <= Number.MAX_SAFE_INTEGER) return v + n;
  return toTxId((BigInt(v) + BigInt(n)) & U64_MAX);
}
