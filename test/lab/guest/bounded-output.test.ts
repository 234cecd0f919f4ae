import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundedOutput } from '../../../src/lab/guest/bounded-output.ts';

describe('BoundedOutput', () => {
  it('keeps exactly the first `limit` bytes and counts every byte (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), fc.nat(300), (chunks, limit) => {
        const out = new BoundedOutput(limit);
        for (const c of chunks) out.push(Buffer.from(c));
        const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
        expect(out.toBuffer().equals(all.subarray(0, limit))).toBe(true);
        expect(out.totalBytes).toBe(all.length);
        expect(out.truncated).toBe(all.length > limit);
      }),
    );
  });

  it('refuses a limit that is not a whole number of bytes', () => {
    expect(() => new BoundedOutput(-1)).toThrow(RangeError);
    expect(() => new BoundedOutput(1.5)).toThrow(RangeError);
  });
});
