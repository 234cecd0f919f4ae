// The pool's table of live blocks: found by address and walked in allocation order,
// exactly as the Map it replaced, whatever the adds and deletes.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LiveBlocks, type Linked } from '../../../src/devices/wasm/live-blocks.ts';

interface Block extends Linked<Block> {
  readonly at: number;
  prev: Block | null;
  next: Block | null;
}

const BASE = 1040;
const block = (at: number): Block => ({ at, prev: null, next: null });

describe('the live-block table', () => {
  // Invariant (live-blocks.ts): values() in insertion order and get(at) agree with a Map
  // after any adds and deletes, and get is undefined for any address no live block has.
  it('answers as a Map keyed by address would, over any adds and deletes (property)', () => {
    const op = fc.oneof(
      fc.record({ add: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ del: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ get: fc.integer({ min: -40, max: 5000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const t = new LiveBlocks<Block>(BASE);
        const model = new Map<number, Block>();
        for (const o of ops) {
          if ('add' in o) {
            const at = BASE + 16 * o.add;
            if (model.has(at)) continue;
            const b = block(at);
            t.add(b);
            model.set(at, b);
          } else if ('del' in o) {
            const at = BASE + 16 * o.del;
            expect(t.delete(at)).toBe(model.get(at));
            model.delete(at);
          } else {
            const at = BASE + o.get;
            expect(t.get(at)).toBe(model.get(at));
          }
          expect(t.size).toBe(model.size);
        }
        expect(t.values()).toEqual([...model.values()]);
      }),
    );
  });

  it('finds nothing at an address off the 16-byte slots, below the base or far past the end', () => {
    const t = new LiveBlocks<Block>(BASE);
    t.add(block(BASE + 32));
    expect(t.get(BASE + 36)).toBeUndefined();
    expect(t.get(BASE - 16)).toBeUndefined();
    expect(t.get(0xffff_fff0)).toBeUndefined();
    expect(t.has(BASE + 32)).toBe(true);
  });

  it('refuses a block off its slots or at a live address, rather than losing one', () => {
    const t = new LiveBlocks<Block>(BASE);
    t.add(block(BASE));
    expect(() => t.add(block(BASE))).toThrow(/live already/);
    expect(() => t.add(block(BASE + 8))).toThrow(/16-byte boundary/);
  });

  it('takes a block far above the others (a large allocation) and still finds each', () => {
    const t = new LiveBlocks<Block>(BASE);
    const far = block(BASE + 16 * 100_000);
    t.add(block(BASE));
    t.add(far);
    expect(t.get(far.at)).toBe(far);
    expect(t.values().map((b) => b.at)).toEqual([BASE, far.at]);
  });
});
