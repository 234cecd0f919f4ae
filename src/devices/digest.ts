// The payload digest of the trace schema: FNV-1a, 64 bit, as 16 lowercase hex digits.
//
// One function everywhere: the TypeScript twins, the C VSP and the C guest driver all
// compute it the same way (lab/drivers/PROTOCOL.md, "Digest"). FNV-1a was chosen because
// it is a dozen lines of C with no tables, usable in a kernel module and a KMDF driver.
//
// BigInt would make this ~50x slower, and it is on the hot path of every packet (several
// digests per round trip), so the 64-bit state is kept as two 32-bit halves and nothing
// is allocated per call.

/** The two 32-bit halves of a digest, filled by `fnv1a64Into` (reuse one per caller). */
export interface DigestHalves {
  hi: number;
  lo: number;
}

/** FNV-1a 64 of bytes[start, end) into `out` (unsigned halves). */
export function fnv1a64Into(out: DigestHalves, bytes: Uint8Array, start = 0, end = bytes.length): void {
  // h * (2^40 + 0x1b3) mod 2^64 in halves: lo * 0x1b3 gives the new low half (its low
  // 32 bits, Math.imul) and a carry into the high half (its bits 32..40, summed from
  // 16-bit limbs so every value stays a small integer); the 2^40 term is lo shifted left
  // by 8 into the high half.
  let hi = 0xcbf29ce4 | 0;
  let lo = 0x84222325 | 0;
  for (let i = start; i < end; i++) {
    lo ^= bytes[i]!;
    const carry = ((lo >>> 16) * 0x1b3 + (((lo & 0xffff) * 0x1b3) >>> 16)) >>> 16;
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) | 0;
    lo = Math.imul(lo, 0x1b3);
  }
  out.hi = hi >>> 0;
  out.lo = lo >>> 0;
}

/** Char codes of the lowercase hex digits. */
const DIGIT: number[] = Array.from({ length: 16 }, (_, i) => i.toString(16).charCodeAt(0));

/** A digest's 16 hex digits from its halves. */
export function hexOfHalves(hi: number, lo: number): string {
  // One call building one flat string: concatenating four 4-digit pieces made three
  // strings, the last one a rope that is flattened again when the event is written.
  const d = DIGIT;
  return String.fromCharCode(
    d[hi >>> 28]!, d[(hi >>> 24) & 15]!, d[(hi >>> 20) & 15]!, d[(hi >>> 16) & 15]!,
    d[(hi >>> 12) & 15]!, d[(hi >>> 8) & 15]!, d[(hi >>> 4) & 15]!, d[hi & 15]!,
    d[lo >>> 28]!, d[(lo >>> 24) & 15]!, d[(lo >>> 20) & 15]!, d[(lo >>> 16) & 15]!,
    d[(lo >>> 12) & 15]!, d[(lo >>> 8) & 15]!, d[(lo >>> 4) & 15]!, d[lo & 15]!,
  );
}

const scratch: DigestHalves = { hi: 0, lo: 0 };

export function digestHex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  fnv1a64Into(scratch, bytes, start, end);
  return hexOfHalves(scratch.hi, scratch.lo);
}
