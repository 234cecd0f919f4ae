// Little-endian fields on byte arrays (src/vmbus/le-bytes.ts): what is put is got back,
// and a u64 is read as the number its halves make, whichever way it is computed.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getU16, getU32, getU64, putU16, putU32, putU64, u64FromHalves } from '../../src/vmbus/le-bytes.ts';

describe('le-bytes', () => {
  it('gets back the u16 and u32 it put, at any offset, as a DataView reads them', () => {
    fc.assert(
      fc.property(fc.nat(0xffff), fc.nat(0xffffffff), fc.nat(8), (a, b, at) => {
        const bytes = new Uint8Array(16);
        putU16(bytes, at, a);
        putU32(bytes, at + 2, b);
        const dv = new DataView(bytes.buffer);
        expect([getU16(bytes, at), getU32(bytes, at + 2)]).toEqual([a, b]);
        expect([dv.getUint16(at, true), dv.getUint32(at + 2, true)]).toEqual([a, b]);
      }),
    );
  });

  it('reads a u64 as lo + hi * 2^32 (exact below 2^53), a small one as its low half, and writes it back the same', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0x1fffff), (lo, hi) => {
        const bytes = new Uint8Array(8);
        putU32(bytes, 0, lo);
        putU32(bytes, 4, hi);
        expect(getU64(bytes, 0)).toBe(lo + hi * 2 ** 32);
        expect(u64FromHalves(lo, hi)).toBe(Number(BigInt(lo) + (BigInt(hi) << 32n)));
        const again = new Uint8Array(8);
        putU64(again, 0, lo + hi * 2 ** 32);
        expect(again).toEqual(bytes);
      }),
    );
    expect(u64FromHalves(7, 0)).toBe(7);
  });
});

describe('u64 fields from 2^53 on', () => {
  it('read and write any u64 exactly: a number below 2^53, a bigint from there (DataView agrees)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n)), (v) => {
        const bytes = new Uint8Array(8);
        new DataView(bytes.buffer).setBigUint64(0, v, true);
        const got = getU64(bytes, 0);
        expect(BigInt(got)).toBe(v);
        expect(typeof got).toBe(v < 2n ** 53n ? 'number' : 'bigint');
        const again = new Uint8Array(8);
        putU64(again, 0, got);
        expect(again).toEqual(bytes);
      }),
    );
  });
});
