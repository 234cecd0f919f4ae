// `bench perf`'s ratio figures: the median of interleaved pairs' ratios and their spread.
// Only the arithmetic and the order of the runs are checked here, never a time.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { interleavedPairs, interleavedTriples, median, pairRatios, round2, timed } from '../../../src/run/commands/perf-pairs.ts';

const positive = fc.double({ min: 1e-3, max: 1e6, noNaN: true });

describe('ratio figures from interleaved pairs', () => {
  it('takes the middle ratio of an odd count and the mean of the middle two of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(/no numbers/);
  });

  it('divides each pair on its own: one slow sample moves the median less than a single pair would', () => {
    // Pair 2's twin ran in a burst (1.5x slower): its ratio alone would read 2.0, not 3.
    const r = pairRatios([[30, 10], [31, 10], [30, 15]]);
    expect(r.median).toBe(3);
    expect(r.spread).toEqual({ min: 2, max: 3.1 });
    expect(r.pairs).toBe(3);
    expect(() => pairRatios([])).toThrow(/at least one pair/);
  });

  // Invariant: spread.min <= median <= spread.max, and every pair's ratio lies in the spread.
  it('keeps the median inside the spread and every pair ratio within it', () => {
    fc.assert(fc.property(fc.array(fc.tuple(positive, positive), { minLength: 1, maxLength: 9 }), (pairs) => {
      const r = pairRatios(pairs);
      expect(r.spread.min).toBeLessThanOrEqual(r.median);
      expect(r.median).toBeLessThanOrEqual(r.spread.max);
      for (const [x, y] of pairs) {
        expect(x / y).toBeGreaterThanOrEqual(r.spread.min);
        expect(x / y).toBeLessThanOrEqual(r.spread.max);
      }
    }));
  });

  // Invariant: a burst that scales both samples of a pair alike does not move that pair's ratio.
  it('is unchanged when both sides of every pair are slowed alike', () => {
    fc.assert(fc.property(fc.array(fc.tuple(positive, positive, fc.double({ min: 0.5, max: 3, noNaN: true })), { minLength: 1, maxLength: 9 }), (xs) => {
      const plain = pairRatios(xs.map(([x, y]) => [x, y]));
      const slowed = pairRatios(xs.map(([x, y, k]) => [x * k, y * k]));
      // Equal up to floating-point rounding (relative).
      const near = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-12 * Math.abs(b));
      near(slowed.median, plain.median);
      near(slowed.spread.min, plain.spread.min);
      near(slowed.spread.max, plain.spread.max);
    }));
  });

  it('alternates which side runs first, starting with the second, and keeps each pair as [x, y]', () => {
    const order: string[] = [];
    let i = 0;
    const pairs = interleavedPairs(4, () => (order.push('x'), `x${i++}`), () => (order.push('y'), `y${i++}`));
    expect(order).toEqual(['y', 'x', 'x', 'y', 'y', 'x', 'x', 'y']);
    expect(pairs).toEqual([['x1', 'y0'], ['x2', 'y3'], ['x5', 'y4'], ['x6', 'y7']]);
  });

  it('times a run in CPU time and wall time and hands back what it returned', () => {
    const t = timed(() => {
      let x = 0;
      for (let k = 0; k < 2_000_000; k++) x += k % 7;
      return x;
    });
    expect(t.value).toBeGreaterThan(0);
    expect(t.cpuMs).toBeGreaterThan(0);
    expect(t.wallMs).toBeGreaterThan(0);
  });

  it('rounds ratios to two decimals', () => {
    expect([round2(2.345678), round2(3), round2(1 / 3)]).toEqual([2.35, 3, 0.33]);
  });
});

describe('two ratios against one base', () => {
  it('runs the base between the two others, swapping them every round, and keeps each round as [a, base, b]', () => {
    const order: string[] = [];
    let i = 0;
    const rounds = interleavedTriples(3, () => (order.push('a'), `a${i++}`), () => (order.push('base'), `base${i++}`), () => (order.push('b'), `b${i++}`));
    expect(order).toEqual(['a', 'base', 'b', 'b', 'base', 'a', 'a', 'base', 'b']);
    expect(rounds).toEqual([['a0', 'base1', 'b2'], ['a5', 'base4', 'b3'], ['a6', 'base7', 'b8']]);
  });
});
