// The payload digest of the trace schema: FNV-1a, 64 bit, as 16 lowercase hex digits.
//
// One function everywhere: the TypeScript twins, the C VSP and the C guest driver all
// compute it the same way (lab/drivers/PROTOCOL.md, "Digest"). FNV-1a was chosen because
// it is a dozen lines of C with no tables, usable in a kernel module and a KMDF driver.
//
// The 64-bit multiply is done on 16-bit limbs so that it stays in exact double
// arithmetic without BigInt (BigInt is ~50x slower here, and this is on the hot path).

const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;
// prime = 0x00000100_000001b3

/** FNV-1a 64 of bytes[start, end), as [hi, lo] 32-bit unsigned halves. */
export function fnv1a64(bytes: Uint8Array, start = 0, end = bytes.length): [number, number] {
  let hi = OFFSET_HI;
  let lo = OFFSET_LO;
  for (let i = start; i < end; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    // (hi:lo) * (0x100:0x1b3) mod 2^64
    //   lo' = lo * 0x1b3 (low 32 bits); carry = high part of lo * 0x1b3
    //   hi' = hi * 0x1b3 + lo * 0x100 + carry  (mod 2^32)
    const loLo = (lo & 0xffff) * 0x1b3;
    const loHi = (lo >>> 16) * 0x1b3;
    const newLo = (loLo + ((loHi & 0xffff) << 16)) >>> 0;
    const carry = Math.floor((loLo + (loHi & 0xffff) * 0x10000) / 0x100000000) + Math.floor(loHi / 0x10000);
    hi = (Math.imul(hi, 0x1b3) + Math.imul(lo, 0x100) + carry) >>> 0;
    lo = newLo;
  }
  return [hi, lo];
}

export function digestHex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const [hi, lo] = fnv1a64(bytes, start, end);
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}
