// A driver's memory held as runs of pages (memory-runs.ts) is exact: written back over
// any memory of the same size it gives the original byte for byte, copied or as live
// views, into a used memory or a new one; and runs that do not tile the memory are
// named, never written. The runs worked out once per version of a driver's memory
// (liveRuns) always describe the memory as it is, whatever wrote it since.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { liveRuns, rememberRuns, RUN_PAGE, runsOf, runsProblem, writeRuns, type MemoryRun } from '../../../src/devices/wasm/memory-runs.ts';
import { Linear } from '../../../src/devices/wasm/linear.ts';

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

  it('property: told what the memory holds now (its runs), writing skips the fills it holds already and gives the same memory', () => {
    fc.assert(
      fc.property(memory, memory, fc.nat(), (m, held, split) => {
        // The memory written into: another memory's pages, as long as m (what a reused instance held).
        const target = new Uint8Array(m.length);
        target.set(held.subarray(0, Math.min(held.length, m.length)));
        const known = runsOf(target, true);
        // An image whose first bytes are held apart (RuntimeImage.memory), the rest as runs.
        const from = (split % (m.length / RUN_PAGE + 1)) * RUN_PAGE;
        target.set(m.subarray(0, from));
        writeRuns(target, from, runsOf(m.subarray(from), false).map((r) => (r.length === 2 ? [r[0] + from, r[1]] : [r[0] + from, r[1], r[2]]) as MemoryRun), m.length, m.length, known);
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

/** What can write a driver's memory: each way through Linear, a raw view it hands out, the driver's code (entries), growth, a restore. */
const write = fc.oneof(
  fc.record({ how: fc.constantFrom('setU32', 'setU16', 'setU64', 'fill', 'write', 'bytes', 'words', 'view', 'driver'), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }), n: fc.integer({ min: 1, max: 3 * RUN_PAGE }) }),
  fc.record({ how: fc.constant('grow'), at: fc.constant(0), v: fc.constant(0), n: fc.constant(1) }),
  fc.record({ how: fc.constant('restore'), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }), n: fc.integer({ min: 1, max: 3 * RUN_PAGE }) }),
);

/** Applies one write; `n` bytes of value `v` at `at` (kept inside the memory). */
function apply(m: Linear, w: { how: string; at: number; v: number; n: number }): void {
  const size = m.size;
  const n = Math.min(w.n, size);
  const at = w.at % (size - n + 1);
  switch (w.how) {
    case 'setU32': return m.setU32(at & ~3, w.v * 0x01010101);
    case 'setU16': return m.setU16(at & ~1, w.v * 0x0101);
    case 'setU64': return m.setU64(at & ~7 & 0xfff8, BigInt(w.v) << 40n);
    case 'fill': return m.fill(w.v, at, at + n);
    case 'write': return m.write(at, new Uint8Array(n).fill(w.v));
    case 'bytes': m.bytes.fill(w.v, at, at + n); return;
    case 'words': m.words[at >>> 2] = w.v; return;
    case 'view': m.view(at, n).fill(w.v); return;
    case 'driver':
      // Wasm code writes without Linear seeing it; the runtime says so on every entry and call out (runtime.ts).
      new Uint8Array(m.memory.buffer).fill(w.v, at, at + n);
      m.touched();
      return;
    case 'grow': return m.ensure(size + 65536);
    case 'restore': {
      // A restore writes an image's runs into the memory and tells liveRuns so (runtime-image.ts restoreRuntime).
      const other = new Uint8Array(size);
      other.fill(w.v, at, at + n);
      other[(at * 7) % size] = 1;
      const runs = runsOf(other, false);
      writeRuns(m.bytes, 0, runs, size, size);
      rememberRuns(m, runs);
      return;
    }
  }
}

describe('the runs of a driver memory, worked out once per version', () => {
  it('property: after any writes, liveRuns describes the memory byte for byte, and equals a scan when nothing was restored', () => {
    fc.assert(
      fc.property(fc.array(write, { maxLength: 12 }), fc.array(fc.boolean(), { maxLength: 12 }), (writes, reads) => {
        const m = new Linear(new WebAssembly.Memory({ initial: 1, maximum: 4 }));
        let restored = false;
        writes.forEach((w, i) => {
          // Read (and so remembered) before some writes, so that a stale answer would show.
          if (reads[i]) liveRuns(m);
          if (w.how === 'grow' && m.size >= 4 * 65536) return;
          apply(m, w);
          restored ||= w.how === 'restore';
          const runs = liveRuns(m);
          const back = new Uint8Array(m.size).fill(0x5a);
          writeRuns(back, 0, runs, back.length, back.length);
          expect(Buffer.compare(back, new Uint8Array(m.memory.buffer))).toBe(0);
          if (!restored) expect(runs).toEqual(runsOf(new Uint8Array(m.memory.buffer), false));
        });
      }),
      { numRuns: 100 },
    );
  });

  it('scans the memory once while nothing writes it, and again after a write', () => {
    const m = new Linear(new WebAssembly.Memory({ initial: 1 }));
    const first = liveRuns(m);
    m.peek();
    m.u32(8);
    expect(liveRuns(m)).toBe(first);
    m.setU32(8, 1);
    expect(liveRuns(m)).not.toBe(first);
  });
});
