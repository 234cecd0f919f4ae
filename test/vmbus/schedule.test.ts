// The seeded schedule (src/vmbus/schedule.ts), the emulator's only source of choices:
// a seed fixes the whole sequence, and a saved state resumes it exactly, also after a
// trip through JSON (to another thread or into a saved run).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Schedule } from '../../src/vmbus/schedule.ts';

const draws = (s: Schedule, n: number) => Array.from({ length: n }, (_, i) => (i % 3 === 0 ? s.pick(7) : s.u32()));

describe('Schedule', () => {
  it('gives the same sequence for the same seed', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), (seed) => {
        expect(draws(new Schedule(seed), 64)).toEqual(draws(new Schedule(seed), 64));
      }),
      { numRuns: 200 },
    );
  });

  it('gives different sequences for different seeds', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (a, b) => {
        fc.pre(a !== b);
        expect(draws(new Schedule(a), 16)).not.toEqual(draws(new Schedule(b), 16));
      }),
      { numRuns: 300 },
    );
    // Neighbouring seeds, the common case (seed, seed + 1, ...), all differ in their first draw.
    const firsts = new Set(Array.from({ length: 1000 }, (_, seed) => new Schedule(seed).u32()));
    expect(firsts.size).toBe(1000);
  });

  it('resumes the same sequence from a saved state, also after JSON', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 200 }), (seed, skip) => {
        const s = new Schedule(seed);
        draws(s, skip);
        const saved = JSON.parse(JSON.stringify(s.state())) as number[];
        const resumed = new Schedule(0, saved);
        expect(draws(resumed, 50)).toEqual(draws(s, 50));
      }),
      { numRuns: 200 },
    );
  });

  it('continues a sequence handed over with restoreState (a run moved to another thread)', () => {
    const a = new Schedule(77);
    draws(a, 33);
    const b = new Schedule(1);
    draws(b, 5);
    b.restoreState(a.state());
    expect(draws(b, 40)).toEqual(draws(a, 40));
  });

  it('picks within range, counts every choice taken, and reaches every alternative', () => {
    const s = new Schedule(12345);
    for (let n = 1; n <= 8; n++) {
      const seen = new Set<number>();
      for (let i = 0; i < 500; i++) {
        const k = s.pick(n);
        expect(k).toBeGreaterThanOrEqual(0);
        expect(k).toBeLessThan(n);
        seen.add(k);
      }
      expect(seen.size).toBe(n);
    }
    expect(s.taken).toBe(8 * 500);
  });

  it('treats seeds as 32-bit: -1 and 0xffffffff are the same schedule', () => {
    expect(draws(new Schedule(-1), 10)).toEqual(draws(new Schedule(0xffffffff), 10));
  });
});
