// Ratio figures of `bench perf` ("X over Y") that a burst of the machine cannot flip.
//
// The development machine is a small VM on a shared host: for seconds at a time
// everything on it runs ~1.5x slower, and other work shares its two cores. A ratio taken
// from one sample of X and one of Y at different moments moves with whichever side a
// burst lands on (the same commit gave 2.31 and 3.20 for the C explore over the twins').
// So each ratio is measured as interleaved pairs - Y, X, then X, Y, and so on, the order
// alternating so that neither side always runs first, on a warmer engine - each pair
// gives one ratio, and the figure is the median of those: one disturbed pair moves it
// little. Beside it the bench prints the spread (smallest and largest pair ratio), so
// a reader sees how noisy the run was.
//
// Each sample is timed in CPU time (process.cpuUsage: this process's user + system time,
// every thread of it), which does not count the time the process waited for a core
// while the neighbours ran; the wall time is kept too, for the absolute figures.
import type { PairSpread } from '../../report/perf-table.ts';

export interface RatioSummary {
  /** Median of the per-pair ratios (mean of the middle two for an even count). */
  median: number;
  spread: PairSpread;
  pairs: number;
}

/** One sample: what the run returned, its CPU time and its wall time. */
export interface Timed<T> {
  value: T;
  cpuMs: number;
  wallMs: number;
}

/** Runs `f`, timing it in this process's CPU time and in wall time. */
export function timed<T>(f: () => T): Timed<T> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = f();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, cpuMs: (c.user + c.system) / 1000, wallMs };
}

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no numbers');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The ratio figure of pairs [x, y] (x over y each): the median of the per-pair ratios
 * and their spread.
 */
// Invariant: spread.min <= median <= spread.max, and every pair's ratio lies in the spread.
export function pairRatios(pairs: readonly (readonly [number, number])[]): RatioSummary {
  if (pairs.length === 0) throw new RangeError('a ratio needs at least one pair');
  const ratios = pairs.map(([x, y]) => x / y);
  return { median: median(ratios), spread: { min: Math.min(...ratios), max: Math.max(...ratios) }, pairs: ratios.length };
}

/**
 * Runs `count` pairs of `x` and `y`, alternating which runs first (pair 0: y then x; pair
 * 1: x then y; ...), and returns the samples in pair order as [x, y].
 */
export function interleavedPairs<X, Y>(count: number, x: () => X, y: () => Y): [X, Y][] {
  const out: [X, Y][] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const b = y();
      out.push([x(), b]);
    } else {
      const a = x();
      out.push([a, y()]);
    }
  }
  return out;
}

/**
 * Two ratios against one base in `count` rounds, the base's sample shared by both: each
 * round runs the base between the two others, which swap places every round (round 0:
 * a, base, b; round 1: b, base, a; ...). So each of a and b runs next to the base, before
 * it in one round and after it in the next, as in interleavedPairs, for one base run a
 * round instead of two. Returns the samples in round order as [a, base, b].
 */
export function interleavedTriples<A, B, C>(count: number, a: () => A, base: () => B, b: () => C): [A, B, C][] {
  const out: [A, B, C][] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const x = a();
      const y = base();
      out.push([x, y, b()]);
    } else {
      const z = b();
      const y = base();
      out.push([a(), y, z]);
    }
  }
  return out;
}

/** A ratio rounded to two decimals, as the table prints it. */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
