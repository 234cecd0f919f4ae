// The table of packets awaiting completion (src/vmbus/trans-table.ts): whatever ids
// arrive in whatever order, it answers as a Map would, and walks by ascending id.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransactionTable } from '../../src/vmbus/trans-table.ts';

type Op = { op: 'send'; n: number } | { op: 'set'; id: number } | { op: 'complete'; pick: number } | { op: 'delete'; id: number } | { op: 'clear' } | { op: 'reserve'; n: number };

/** Ids as a channel hands them out (consecutive), plus any id a restore could bring back. */
const idArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.constantFrom(2 ** 32, 2 ** 32 + 64, 0xffffffff));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('send' as const), n: fc.integer({ min: 1, max: 200 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('set' as const), id: idArb }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), id: idArb }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
  // A restore makes room for what its buffer could bring back before adding it.
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reserve' as const), n: fc.integer({ min: 0, max: 2000 }) }) },
);

describe('TransactionTable', () => {
  it('answers get, has, size and delete as a Map would, under any sequence of sends, completions and restores', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.integer({ min: 1, max: 300 }), (ops, capacity) => {
        const t = new TransactionTable<{ id: number }>(capacity);
        const model = new Map<number, { id: number }>();
        let next = 1;
        for (const o of ops) {
          if (o.op === 'send') {
            for (let i = 0; i < o.n; i++, next++) {
              const v = { id: next };
              t.set(next, v);
              model.set(next, v);
            }
          } else if (o.op === 'set') {
            const v = { id: o.id };
            t.set(o.id, v);
            model.set(o.id, v);
          } else if (o.op === 'complete') {
            // Completions come back in any order: delete one of the waiting ids.
            const ids = [...model.keys()];
            if (ids.length === 0) continue;
            const id = ids[o.pick % ids.length]!;
            expect(t.delete(id)).toBe(true);
            model.delete(id);
          } else if (o.op === 'delete') {
            expect(t.delete(o.id)).toBe(model.delete(o.id));
          } else if (o.op === 'reserve') {
            t.reserve(o.n);
          } else {
            t.clear();
            model.clear();
          }
          expect(t.size).toBe(model.size);
        }
        const ascending = [...model.keys()].sort((a, b) => a - b);
        expect(t.ids()).toEqual(ascending);
        expect(t.values()).toEqual(ascending.map((id) => model.get(id)));
        const unordered: Array<[number, object]> = [];
        t.forEachUnordered((v, k) => unordered.push([k as number, v]));
        expect(unordered.sort((a, b) => a[0] - b[0])).toEqual(ascending.map((id) => [id, model.get(id)]));
        for (const id of ascending) {
          expect(t.get(id)).toBe(model.get(id));
          expect(t.has(id)).toBe(true);
        }
        // Ids next to the present ones (where probing runs) are absent unless present.
        for (const id of ascending) {
          for (const near of [id - 1, id + 1, id + 64]) expect(t.get(near)).toBe(model.get(near));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('walks by ascending id however the ids wrapped around its slots', () => {
    // 40 waiting ids that straddle the end of a 64-slot table, added newest first.
    const t = new TransactionTable<{ id: number }>(32);
    const ids = Array.from({ length: 40 }, (_, i) => 1000 + i).reverse();
    for (const id of ids) t.set(id, { id });
    const seen: number[] = [];
    t.forEach((v, k) => {
      expect(v.id).toBe(k);
      seen.push(k as number);
    });
    expect(seen).toEqual([...ids].sort((a, b) => a - b));
  });

  it('replaces the packet for an id it already holds', () => {
    const t = new TransactionTable<{ n: number }>();
    const second = { n: 2 };
    t.set(7, { n: 1 });
    t.set(7, second);
    expect(t.size).toBe(1);
    expect(t.get(7)).toBe(second);
  });
});
