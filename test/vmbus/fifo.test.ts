// The library queue (src/vmbus/fifo.ts): behaves like an array used as a queue, stays
// plain data (it is cloned inside guest images), and keeps sorted inserts stable.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fifo, fifoClear, fifoInsertSorted, fifoItems, fifoLength, fifoPeek, fifoPush, fifoShift } from '../../src/vmbus/fifo.ts';

describe('fifo', () => {
  it('behaves like an array queue under any sequence of pushes, shifts and clears', () => {
    type Op = { op: 'push'; n: number } | { op: 'shift'; n: number } | { op: 'clear' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ op: fc.constant('push' as const), n: fc.integer({ min: 1, max: 3000 }) }) },
      { weight: 5, arbitrary: fc.record({ op: fc.constant('shift' as const), n: fc.integer({ min: 1, max: 3000 }) }) },
      { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
        const q = fifo<number>();
        const model: number[] = [];
        let next = 0;
        for (const o of ops) {
          if (o.op === 'push') {
            for (let i = 0; i < o.n; i++) {
              fifoPush(q, next);
              model.push(next++);
            }
          } else if (o.op === 'shift') {
            for (let i = 0; i < o.n; i++) {
              const got = fifoShift(q);
              const want = model.shift();
              if (got !== want) expect(got).toBe(want);
            }
          } else {
            fifoClear(q);
            model.length = 0;
          }
          if (fifoLength(q) !== model.length || fifoPeek(q) !== model[0]) {
            expect([fifoLength(q), fifoPeek(q)]).toEqual([model.length, model[0]]);
          }
        }
        expect(fifoItems(q)).toEqual(model);
        // Plain data: a structured clone is the same queue.
        expect(fifoItems(structuredClone(q))).toEqual(model);
      }),
      { numRuns: 40 },
    );
  });

  it('inserts in key order, after items with an equal key', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10 }), { maxLength: 60 }), fc.nat(5), (keys, shifts) => {
        const q = fifo<{ k: number; i: number }>();
        keys.forEach((k, i) => fifoInsertSorted(q, { k, i }, (x) => x.k));
        const expected = keys.map((k, i) => ({ k, i })).sort((a, b) => a.k - b.k || a.i - b.i);
        for (let s = 0; s < shifts; s++) expect(fifoShift(q)).toEqual(expected.shift());
        // Inserting after some were taken still keeps the rest in order.
        fifoInsertSorted(q, { k: 5, i: 1000 }, (x) => x.k);
        const rest = [...expected, { k: 5, i: 1000 }].sort((a, b) => a.k - b.k || a.i - b.i);
        expect(fifoItems(q)).toEqual(rest);
      }),
      { numRuns: 200 },
    );
  });
});
