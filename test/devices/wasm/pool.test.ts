// The checked pool: guard bytes, poison and quarantine, double and bad frees, tags, and
// leaks; and, as a property, that live blocks never overlap and keep their contents
// whatever the order of allocations and frees.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Linear } from '../../../src/devices/wasm/linear.ts';
import { GUARD, Pool, type AllocationPlace } from '../../../src/devices/wasm/pool.ts';
import { DriverViolation } from '../../../src/devices/wasm/violations.ts';
import { spawnSync } from 'node:child_process';
import { CVsp } from '../../../devices/sample/c/vsp.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';

const TAG = 0x74736554; // 'Test'
const fresh = () => {
  const mem = new Linear(new WebAssembly.Memory({ initial: 1 }));
  return { mem, pool: new Pool(mem, 1024) };
};
const rule = (fn: () => void): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverViolation) return e.report.rule;
    throw e;
  }
  return 'none';
};

describe('the checked pool', () => {
  it('hands out zeroed blocks and takes them back', () => {
    const { mem, pool } = fresh();
    const a = pool.alloc(40, TAG, 'driver');
    expect([...mem.view(a, 40)].every((b) => b === 0)).toBe(true);
    mem.bytes.fill(7, a, a + 40);
    pool.free(a, TAG, 'ExFreePoolWithTag');
    expect(pool.driverLeaks()).toEqual([]);
  });

  it('hands out a shim block holding a copy, its guards checked as any block\'s', () => {
    const { mem, pool } = fresh();
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const a = pool.allocCopy(src, TAG);
    expect([...mem.view(a, src.length)]).toEqual([...src]);
    expect(pool.live.get(a)?.owner).toBe('shim');
    mem.bytes[a + src.length] = 0;
    expect(rule(() => pool.free(a, TAG, 'shim'))).toBe('pool.overrun');
  });

  it('sets both guards of a block in a reused block, which held poison, and its bytes (zeroed, or the copy): a write just before it or just past it is an overrun', () => {
    const { mem, pool } = fresh();
    const src = Uint8Array.from({ length: 11 }, (_, i) => i + 1);
    // Enough frees of one size that blocks leave quarantine and are handed out again.
    for (let i = 0; i < 300; i++) pool.free(pool.alloc(src.length, TAG, 'shim'), TAG, 'shim');
    for (const [off, copy] of [[-1, true], [src.length, true], [15, true], [-16, false], [src.length, false], [15, false]] as const) {
      const a = copy ? pool.allocCopy(src, TAG) : pool.alloc(src.length, TAG, 'driver');
      expect([...mem.view(a, src.length)]).toEqual(copy ? [...src] : Array(src.length).fill(0));
      expect([...mem.view(a - GUARD, GUARD)].every((b) => b === 0xfd)).toBe(true);
      expect([...mem.view(a + src.length, 16 - src.length + GUARD)].every((b) => b === 0xfd)).toBe(true);
      mem.bytes[a + off] = 0;
      expect(rule(() => pool.free(a, TAG, 'shim'))).toBe('pool.overrun');
    }
  });

  // Invariant: whatever a block's size (short blocks are written and checked a word at a
  // time, long ones natively: pool.ts SMALL), a new or reused block holds zeroes or its
  // copy, every byte of its writable bytes may be written, any one byte written in its
  // guards (the padding to its 16-byte end included) is an overrun at its free, and any
  // one byte of it written after its free is a write after free.
  it('property: guards and poison are checked to the byte for blocks of any size, new or reused', () => {
    const size = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 480, max: 560 }), fc.integer({ min: 0, max: 3000 }));
    fc.assert(fc.property(size, fc.boolean(), fc.boolean(), fc.nat(), fc.nat(), (n, copy, reused, probe, probe2) => {
      const mem = new Linear(new WebAssembly.Memory({ initial: 1 }));
      const pool = new Pool(mem, 1024);
      // A block of the same size freed and out of quarantine: the next one of that size is
      // made in its poisoned memory.
      if (reused) for (let i = 0; i < 258; i++) pool.free(pool.alloc(n, TAG, 'shim'), TAG, 'shim');
      const src = Uint8Array.from({ length: n }, (_, i) => (i % 251) + 1);
      const make = (): number => (copy ? pool.allocCopy(src, TAG) : pool.alloc(n, TAG, 'driver'));
      const a = make();
      expect(Buffer.from(mem.view(a, n)).equals(copy ? src : new Uint8Array(n))).toBe(true);
      mem.bytes.fill(0x5a, a, a + n); // every byte of the block is the driver's to write
      pool.free(a, TAG, 'ExFreePoolWithTag');
      const padded = ((Math.max(n, 1) + 15) & ~15) - n;
      const guardBytes = GUARD + padded + GUARD; // before it, then from its end
      const b = make();
      const off = probe % guardBytes;
      const hit = off < GUARD ? b - GUARD + off : b + n + (off - GUARD);
      mem.bytes[hit]! ^= 0x40;
      expect(rule(() => pool.free(b, TAG, 'ExFreePoolWithTag'))).toBe('pool.overrun');
      mem.bytes[hit]! ^= 0x40; // put back, the block is freed as any other
      pool.free(b, TAG, 'ExFreePoolWithTag');
      const c = make();
      pool.free(c, TAG, 'ExFreePoolWithTag');
      mem.bytes[c + (probe2 % (n + padded))]! ^= 0x40;
      expect(rule(() => pool.verifyAll('EvtDriverUnload'))).toBe('pool.write-after-free');
    }), { numRuns: 300 });
  });

  it('names a double free, a bad free and a wrong tag', () => {
    const { pool } = fresh();
    const a = pool.alloc(16, TAG, 'driver');
    pool.free(a, TAG, 'ExFreePoolWithTag');
    expect(rule(() => pool.free(a, TAG, 'ExFreePoolWithTag'))).toBe('pool.double-free');
    expect(rule(() => pool.free(a + 4, TAG, 'ExFreePoolWithTag'))).toBe('pool.bad-free');
    const b = pool.alloc(16, TAG, 'driver');
    expect(rule(() => pool.free(b, TAG + 1, 'ExFreePoolWithTag'))).toBe('pool.wrong-tag');
  });

  it('finds a write past the end and before the start of a block', () => {
    const { mem, pool } = fresh();
    const a = pool.alloc(10, TAG, 'driver');
    mem.bytes[a + 10] = 1;
    expect(rule(() => pool.free(a, TAG, 'ExFreePoolWithTag'))).toBe('pool.overrun');
    const b = pool.alloc(10, TAG, 'driver');
    mem.bytes[b - GUARD] = 1;
    expect(rule(() => pool.free(b, TAG, 'ExFreePoolWithTag'))).toBe('pool.overrun');
  });

  it('finds a write after free when the poison is checked (quarantine end, or unload)', () => {
    const { mem, pool } = fresh();
    const a = pool.alloc(24, TAG, 'driver');
    pool.free(a, TAG, 'ExFreePoolWithTag');
    mem.bytes[a + 3] = 0;
    expect(rule(() => pool.verifyAll('EvtDriverUnload'))).toBe('pool.write-after-free');
  });

  it('reports what the driver never freed, not the shim\'s own blocks', () => {
    const { pool } = fresh();
    pool.alloc(8, TAG, 'shim');
    const a = pool.alloc(8, TAG, 'driver');
    expect(pool.driverLeaks().map((x) => x.at)).toEqual([a]);
  });

  // Invariant: live blocks never overlap, and a block keeps what was written to it
  // until it is freed, through any sequence of allocations and frees (reuse included).
  it('keeps live blocks apart and intact through any sequence of allocations and frees', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constant(-1)), { maxLength: 600 }), (ops) => {
      const { mem, pool } = fresh();
      const live: Array<{ at: number; size: number; fill: number }> = [];
      let n = 0;
      for (const op of ops) {
        if (op === -1) {
          const x = live.shift();
          if (x) pool.free(x.at, TAG, 'ExFreePoolWithTag');
          continue;
        }
        const at = pool.alloc(op, TAG, 'driver');
        const fill = (++n % 250) + 1;
        mem.bytes.fill(fill, at, at + op);
        live.push({ at, size: op, fill });
      }
      const sorted = [...live].sort((a, b) => a.at - b.at);
      for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.at).toBeGreaterThanOrEqual(sorted[i - 1]!.at + sorted[i - 1]!.size);
      for (const x of live) expect(mem.view(x.at, x.size).every((b) => b === x.fill)).toBe(true);
      pool.verifyAll('check');
    }), { numRuns: 60 });
  });
});

describe('the pool\'s tables as a state key reads them', () => {
  /** A pool after allocations (sizes), frees (-1: the oldest live block) and a tag of each. */
  const after = (ops: readonly number[], shift = 0): Pool => {
    const { pool } = fresh();
    const live: Array<[at: number, tag: number]> = [];
    ops.forEach((op, i) => {
      if (op < 0) {
        const x = live.shift();
        if (x) pool.free(x[0], x[1], 'ExFreePoolWithTag');
      } else live.push([pool.alloc(op, TAG + ((i + shift) % 3), (i + shift) % 2 ? 'driver' : 'shim'), TAG + ((i + shift) % 3)]);
    });
    return pool;
  };
  const numbers = (p: Pool): number[] => {
    const out: number[] = [];
    p.keyNumbers((n) => out.push(n));
    return out;
  };
  const tables = (p: Pool): unknown => {
    const { allocations: _a, live, quarantine, spare, ...rest } = p.image(false);
    return { ...rest, live: [...live], quarantine: [...quarantine], spare: spare.map(([total, bases]) => [total, [...bases]]) };
  };
  const opsArb = fc.array(fc.oneof(fc.integer({ min: 1, max: 80 }), fc.constant(-1)), { maxLength: 300 });

  it('property: two pools give the same numbers exactly when their tables (without sites and the allocation count) are equal', () => {
    fc.assert(fc.property(opsArb, opsArb, fc.nat(5), fc.nat(5), (a, b, sa, sb) => {
      const [p, q] = [after(a, sa), after(b, sb)];
      expect(numbers(p)).toEqual(numbers(p)); // read in place: reading changes nothing
      const sameNumbers = JSON.stringify(numbers(p)) === JSON.stringify(numbers(q));
      expect(sameNumbers).toBe(JSON.stringify(tables(p)) === JSON.stringify(tables(q)));
    }), { numRuns: 80, examples: [[[8, 8, -1], [8, 8, -1], 0, 0], [[8, -1], [16, -1], 0, 0], [[8], [8], 0, 2], [[8, 8], [8, 8], 0, 1]] });
  });

  it('property: a pool restored from its image gives the numbers of the pool it was taken of', () => {
    fc.assert(fc.property(opsArb, (ops) => {
      const p = after(ops);
      const { pool: q } = fresh();
      q.restore(p.image());
      expect(numbers(q)).toEqual(numbers(p));
    }), { numRuns: 40 });
  });
});

describe('where a leaked block was allocated', () => {
  it('is the kernel call and the driver entries it was made in, innermost first (shim blocks are not the driver\'s)', () => {
    const mem = new Linear(new WebAssembly.Memory({ initial: 1 }));
    let place: AllocationPlace = { call: 'ExAllocatePool2', entries: ['EvtIoDeviceControl', 'EvtTimerFunc'] };
    const pool = new Pool(mem, 1024, () => place);
    pool.alloc(8, TAG, 'driver');
    place = { call: 'kmalloc', entries: ['probe'] };
    pool.alloc(8, TAG, 'driver');
    pool.alloc(8, TAG, 'shim');
    expect(pool.driverLeaks().map((a) => a.site)).toEqual([['ExAllocatePool2', 'EvtTimerFunc', 'EvtIoDeviceControl'], ['kmalloc', 'probe']]);
  });

  it('is the block\'s own, and so are its size, tag and owner, when the pool reuses a freed block\'s record for it', () => {
    const mem = new Linear(new WebAssembly.Memory({ initial: 1 }));
    let place: AllocationPlace = { call: 'ExAllocatePool2', entries: ['EvtVmbChannelRestorePacket'] };
    const pool = new Pool(mem, 1024, () => place);
    const TAG2 = 0x32676154; // 'Tag2'
    // Freed records of both owners, then blocks made in them (the freed ones stay in quarantine).
    for (const owner of ['driver', 'shim', 'driver'] as const) pool.free(pool.alloc(24, TAG, owner), TAG, 'free');
    place = { call: 'kmalloc', entries: ['probe', 'work'] };
    const a = pool.alloc(40, TAG2, 'driver');
    pool.allocCopy(Uint8Array.of(1, 2, 3), TAG);
    const b = pool.alloc(8, TAG, 'driver');
    expect(pool.driverLeaks().map((x) => [x.at, x.size, x.tag, x.owner, x.site])).toEqual([
      [a, 40, TAG2, 'driver', ['kmalloc', 'work', 'probe']],
      [b, 8, TAG, 'driver', ['kmalloc', 'work', 'probe']],
    ]);
    expect(pool.live.values().map((x) => x.owner)).toEqual(['driver', 'shim', 'driver']);
  });

  const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
  it.skipIf(!toolchain)('on the C VSP: the entries by default, the driver\'s own functions with allocationStacks', () => {
    const sites = (allocationStacks: boolean): string[][] => {
      const v = new CVsp({ choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0, allocationStacks });
      const before = new Set(v.rt.pool.driverLeaks().map((a) => a.at));
      v.run('open 3 8d2f5c3a-71b4-4e0e-9a6d-2c1f00000003 loopback ring-pages=4');
      return v.rt.pool.driverLeaks().filter((a) => !before.has(a.at)).map((a) => a.site);
    };
    // The VSP_CHANNEL that `open` allocates, through the VSP's IOCTL path.
    expect(sites(false)).toContainEqual(['ExAllocatePool2', 'EvtIoDeviceControl', 'EvtIoInCallerContext']);
    expect(sites(true).some((s) => s.includes('VspChannelOpen'))).toBe(true);
  });
});

describe('big blocks reusing a longer freed block (best fit, split)', () => {
  // Big: longer than 512 bytes (pool.ts BIG); a few small sizes push blocks through quarantine.
  const size = fc.oneof(fc.integer({ min: 513, max: 6000 }), fc.integer({ min: 1, max: 100 }));
  /** An allocation (a size), or a free of the live block at an index (modulo how many are live), negative. */
  const opsArb = fc.array(fc.oneof({ weight: 3, arbitrary: size }, { weight: 2, arbitrary: fc.integer({ min: -1000, max: -1 }) }), { minLength: 300, maxLength: 900 });
  type Live = Array<{ at: number; size: number; fill: number }>;
  const run = (mem: Linear, pool: Pool, ops: readonly number[], live: Live, addrs: number[]): void => {
    let n = addrs.length;
    for (const op of ops) {
      if (op < 0) {
        if (live.length === 0) continue;
        const [x] = live.splice(-op % live.length, 1);
        pool.free(x!.at, TAG, 'ExFreePoolWithTag');
        continue;
      }
      const at = pool.alloc(op, TAG, 'driver');
      const fill = (++n % 250) + 1;
      mem.bytes.fill(fill, at, at + op);
      live.push({ at, size: op, fill });
      addrs.push(at);
    }
  };
  const round16 = (n: number): number => (n + 15) & ~15;

  it('property: live blocks and their guards never overlap, keep their contents, and a restored pool hands out what the original does', () => {
    fc.assert(fc.property(opsArb, fc.nat(), (ops, cut) => {
      const { mem, pool } = fresh();
      const live: Live = [];
      const k = cut % (ops.length + 1);
      run(mem, pool, ops.slice(0, k), live, []);
      // A copy of the memory and the tables, from here on given the same operations.
      const mem2 = new Linear(new WebAssembly.Memory({ initial: 1 }));
      mem2.ensure(mem.size);
      mem2.bytes.set(mem.bytes.subarray(0, mem.size));
      const pool2 = new Pool(mem2, 1024);
      pool2.restore(pool.image());
      const live2 = live.map((x) => ({ ...x }));
      const a: number[] = [];
      const b: number[] = [];
      run(mem, pool, ops.slice(k), live, a);
      run(mem2, pool2, ops.slice(k), live2, b);
      expect(b).toEqual(a);
      const sorted = [...live].sort((p, q) => p.at - q.at);
      for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.at - GUARD).toBeGreaterThanOrEqual(sorted[i - 1]!.at + round16(sorted[i - 1]!.size) + GUARD);
      for (const x of live) expect(mem.view(x.at, x.size).every((v) => v === x.fill)).toBe(true);
      pool.verifyAll('check');
      pool2.verifyAll('check');
    }), { numRuns: 25 });
  });

  it('hands a freed big block out split for a shorter one, whose write after free is still caught', () => {
    const { mem, pool } = fresh();
    const big = pool.alloc(20000, TAG, 'driver');
    pool.free(big, TAG, 'ExFreePoolWithTag');
    // Out of quarantine: 256 frees later.
    for (let i = 0; i < 256; i++) pool.free(pool.alloc(8, TAG, 'shim'), TAG, 'ExFreePoolWithTag');
    const top = pool.image().top;
    const a = pool.alloc(12000, TAG, 'driver');
    const b = pool.alloc(7000, TAG, 'driver');
    expect(a).toBe(big); // the freed block, split
    expect(b).toBeGreaterThan(a); // its remainder, split again
    expect(b + 7000).toBeLessThan(big + 20000);
    expect(pool.image().top).toBe(top);
    expect(mem.view(b, 7000).every((v) => v === 0)).toBe(true); // zeroed, as ExAllocatePool2's
    mem.bytes[a + 12000] = 1; // one past its end: in the guard it was given, not the old block's poison
    expect(rule(() => pool.free(a, TAG, 'ExFreePoolWithTag'))).toBe('pool.overrun');
    pool.free(b, TAG, 'ExFreePoolWithTag');
    mem.bytes[b + 6999] = 7; // after the free
    expect(rule(() => {
      for (let i = 0; i < 256; i++) pool.free(pool.alloc(8, TAG, 'shim'), TAG, 'ExFreePoolWithTag');
    })).toBe('pool.write-after-free');
  });

  it('property: a repeating pattern of big blocks keeps the top within the quarantine\'s and the live blocks\' worth', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 513, max: 40000 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 4 }), (pattern, window) => {
      const { pool } = fresh();
      const live: number[] = [];
      const tops: number[] = [];
      // Rounds enough for the quarantine to fill and its first blocks to be reused, then as many again twice.
      const warm = Math.ceil((256 + window) / pattern.length) + 2;
      for (let r = 0; r < 3 * warm; r++) {
        for (const n of pattern) {
          live.push(pool.alloc(n, TAG, 'driver'));
          if (live.length > window) pool.free(live.shift()!, TAG, 'ExFreePoolWithTag');
        }
        tops.push(pool.image().top - pool.base);
      }
      const peak = Math.max(...pattern) + 2 * GUARD + 16;
      // Bounded: no more than the quarantine's and the live blocks' worth. (Not always constant after the
      // warm-up: a split may leave a later, longer block of the pattern no spare to fit in, until
      // released neighbours merge again; the top then creeps a block at a time.)
      expect(Math.max(...tops.slice(warm))).toBeLessThanOrEqual(tops[warm - 1]! + 2 * peak * pattern.length);
      expect(tops[3 * warm - 1]).toBeLessThanOrEqual((256 + window + pattern.length) * peak);
    }), { numRuns: 40 });
  });
});
