// A driver's memory held as runs of pages (memory-runs.ts) is exact: written back over
// any memory of the same size it gives the original byte for byte, copied or as live
// views, into a used memory or a new one; and runs that do not tile the memory are
// named, never written.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RUN_PAGE, runsOf, runsProblem, writeRuns, type MemoryRun } from '../../../src/devices/wasm/memory-runs.ts';

/** A memory of whole pages, each zero, one value (a fill) throughout, or random bytes, with a few bytes changed anywhere. */
const memory = fc
  .record({
    // Few values, so that long runs of one (longer than the 16-page stride) come up.
    pages: fc.array(fc.oneof(fc.constant<'zero'>('zero'), fc.constantFrom(0xdd, 0xfd), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 1, maxLength: 64 })), { minLength: 1, maxLength: 48 }),
    pokes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
  })
  .map(({ pages, pokes }) => {
    const m = new Uint8Array(pages.length * RUN_PAGE);
    pages.forEach((p, i) => {
      if (typeof p === 'number') m.fill(p, i * RUN_PAGE, (i + 1) * RUN_PAGE);
      else if (p !== 'zero') for (let j = 0; j < RUN_PAGE; j++) m[i * RUN_PAGE + j] = p[j % p.length]!;
    });
    // A single changed byte in a page of one value (a write after free in the quarantine's poison).
    for (const [at, v] of pokes) m[at % m.length] = v;
    return m;
  });

describe('memory as runs of pages', () => {
  it('property: written back over used memory of the same size, the runs give the memory byte for byte (copied or live)', () => {
    fc.assert(
      fc.property(memory, fc.boolean(), fc.integer({ min: 0, max: 255 }), (m, live, garbage) => {
        const runs = runsOf(m, live);
        expect(runsProblem(runs, 0, m.length)).toBeNull();
        const target = new Uint8Array(m.length).fill(garbage);
        writeRuns(target, 0, runs, m.length, m.length);
        expect(Buffer.compare(target, m)).toBe(0);
      }),
    );
  });

  it('property: into a new memory (zero from cleanFrom on) the zero runs need not be written', () => {
    fc.assert(
      fc.property(memory, fc.nat(), (m, floor) => {
        const cleanFrom = floor % (m.length + 1);
        const target = new Uint8Array(m.length);
        target.fill(0x5a, 0, cleanFrom); // a module's data below the heap
        writeRuns(target, 0, runsOf(m, false), m.length, cleanFrom);
        expect(Buffer.compare(target, m)).toBe(0);
      }),
    );
  });

  it('a copy does not change with the memory it was taken of; a live view does', () => {
    const m = new Uint8Array(4 * RUN_PAGE);
    m.fill(7, RUN_PAGE, 2 * RUN_PAGE);
    m[3 * RUN_PAGE + 5] = 1;
    const copy = runsOf(m, false);
    const live = runsOf(m, true);
    m[3 * RUN_PAGE + 5] = 2;
    const read = (runs: MemoryRun[]) => {
      const t = new Uint8Array(m.length);
      writeRuns(t, 0, runs, m.length, m.length);
      return t[3 * RUN_PAGE + 5];
    };
    expect([read(copy), read(live)]).toEqual([1, 2]);
  });

  it('holds pages of one value as a value and a length, and leaves out the zero at the end', () => {
    const m = new Uint8Array(8 * RUN_PAGE);
    m[10] = 1;
    m.fill(0xdd, 2 * RUN_PAGE, 5 * RUN_PAGE);
    const runs = runsOf(m, false);
    expect(runs.map((r) => (r.length === 2 ? ['bytes', r[0], r[1].length] : ['fill', r[0], r[1], r[2]]))).toEqual([
      ['bytes', 0, RUN_PAGE],
      ['fill', RUN_PAGE, RUN_PAGE, 0],
      ['fill', 2 * RUN_PAGE, 3 * RUN_PAGE, 0xdd],
    ]);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not a list', { a: 1 }, /is not a list of runs/],
    ['a gap', [[0, 4096, 0], [8192, 4096, 1]], /\[1\] starts at 8192, not where the run before it ended \(4096\)/],
    ['past the end', [[0, 3 * 4096, 0]], /\[0\] ends at 12288, past the memory's 8192 bytes/],
    ['no bytes', [[0, new Uint8Array(0)]], /\[0\] holds no bytes/],
    ['a fill that is no byte', [[0, 4096, 256]], /\[0\] fills with 256, not a byte/],
    ['a length that is no count', [[0, -1, 0]], /\[0\] has length -1/],
    ['a run of four fields', [[0, 1, 2, 3]], /\[0\] is not \[at, bytes\] or \[at, length, fill\]/],
  ];
  it.each(bad)('names what is wrong with runs that do not tile the memory: %s', (_what, runs, message) => {
    expect(runsProblem(runs, 0, 2 * 4096)).toMatch(message);
  });
});
