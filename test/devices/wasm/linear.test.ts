// A driver's memory as the shim reads it: C strings, and the strings remembered by
// address (CStrings), which must read exactly what cstring reads whatever the driver
// wrote in between.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CStrings, Linear, newSlot } from '../../../src/devices/wasm/linear.ts';

const fresh = (pages = 1) => new Linear(new WebAssembly.Memory({ initial: pages }));
const put = (m: Linear, at: number, bytes: number[]) => m.write(at, Uint8Array.from(bytes));

describe('a driver memory', () => {
  it('reads ASCII and UTF-8 C strings up to their NUL', () => {
    const m = fresh();
    put(m, 100, [...Buffer.from('seq-0123456789abcdef-long enough for two chunks'), 0]);
    expect(m.cstring(100)).toBe('seq-0123456789abcdef-long enough for two chunks');
    put(m, 300, [...Buffer.from('größe'), 0]);
    expect(m.cstring(300)).toBe('größe');
  });

  it('reads a string that runs to the end of memory without a NUL', () => {
    const m = fresh();
    const end = m.bytes.length;
    put(m, end - 3, [0x61, 0x62, 0x63]);
    expect(m.cstring(end - 3)).toBe('abc');
    expect(new CStrings().at(m, end - 3)).toBe('abc');
  });

  it('remembers a string by address but reads what was written there since', () => {
    const m = fresh();
    const s = new CStrings();
    put(m, 64, [...Buffer.from('00000000'), 0]);
    expect(s.at(m, 64)).toBe('00000000');
    put(m, 64, [...Buffer.from('c0000001'), 0]);
    expect(s.at(m, 64)).toBe('c0000001');
    put(m, 68, [0]); // shorter now
    expect(s.at(m, 64)).toBe('c000');
    put(m, 68, [0x30, 0x30, 0x30, 0x31, 0x78, 0]); // longer now
    expect(s.at(m, 64)).toBe('c0000001x');
  });

  // Invariants (linear.ts, CStrings): at(mem, a) and read(mem, a, slot) === mem.cstring(a), whatever the writes between reads.
  it('reads through CStrings (by address, or through a reader\'s slot) exactly what cstring reads, over any writes (property)', () => {
    const byte = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0), fc.integer({ min: 0x80, max: 0xff }));
    const step = fc.oneof(
      fc.record({ read: fc.integer({ min: 0, max: 63 }) }),
      fc.record({ at: fc.integer({ min: 0, max: 63 }), bytes: fc.array(byte, { minLength: 1, maxLength: 24 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const m = fresh();
        const s = new CStrings();
        // Two readers with their own slots beside plain reads (as trace fields read).
        const slots = [newSlot(), newSlot()];
        const base = 4096;
        steps.forEach((st, i) => {
          const a = 'read' in st ? base + st.read : -1;
          if (a < 0) put(m, base + (st as { at: number }).at, (st as { bytes: number[] }).bytes);
          else if (i % 3 === 0) expect(s.at(m, a)).toBe(m.cstring(a));
          else expect(s.read(m, a, slots[i % 3 - 1]!)).toBe(m.cstring(a));
        });
      }),
    );
  });

  // fill and allBytes go word by word in the middle and byte by byte at the ends: any
  // range, aligned or not, short or long, must read as a byte loop would.
  it('fills exactly [from, to) and tells whether a range is all one byte, for any range (property)', () => {
    // Lengths past 1024 are compared natively, and past 64 KiB in more than one piece (linear.ts allBytes).
    const length = fc.oneof(fc.integer({ min: 0, max: 700 }), fc.integer({ min: 900, max: 140_000 }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 700 }), length, fc.integer({ min: 0, max: 255 }), fc.nat(), (from0, len, value, probe) => {
        const m = fresh(3);
        const from = 64 + from0;
        const to = from + len;
        const span = to + 1024;
        m.bytes.fill(0xa5, 0, span);
        m.fill(value, from, to);
        const b = m.bytes;
        let wrong = -1;
        for (let i = 0; i < span && wrong < 0; i++) if (b[i] !== (i >= from && i < to ? value : 0xa5)) wrong = i;
        expect(wrong).toBe(-1);
        expect(m.allBytes(from, to, value)).toBe(true);
        // One byte changed inside the range is seen, wherever it is.
        if (len > 0) {
          const at = from + (probe % len);
          b[at] = value ^ 1;
          expect(m.allBytes(from, to, value)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });
});
