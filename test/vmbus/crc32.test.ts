// The save stream's CRC-32 (src/vmbus/crc32.ts) must be zlib's, short input or long,
// whole buffer or a range of one: blobs written before it existed still verify.

import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/vmbus/crc32.ts';

describe('crc32', () => {
  it('gives zlib\'s CRC-32 for any bytes, on both sides of the native cut-over', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        expect(crc32(b)).toBe(zlibCrc32(b));
      }),
      { numRuns: 300 },
    );
  });

  it('gives the CRC-32 of just the range asked for', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(), (b, x, y) => {
        const start = b.length === 0 ? 0 : x % b.length;
        const end = start + (b.length - start === 0 ? 0 : y % (b.length - start + 1));
        expect(crc32(b, start, end)).toBe(zlibCrc32(b.subarray(start, end)));
      }),
      { numRuns: 300 },
    );
  });

  it('checksums the empty input and a known vector', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});
