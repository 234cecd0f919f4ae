// Transaction ids are u64s (src/vmbus/tx-id.ts): exact through the ring's descriptor, the
// KMCL send path, the awaiting table and the LibBuf a save writes, at 2^53 + 1 and
// 2^64 - 1 where a double would round.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IncomingRing, OutgoingRing, RingMemory } from '../../src/vmbus/ring.ts';
import { PacketType, ringBytes } from '../../src/vmbus/ring-layout.ts';
import { TransactionTable } from '../../src/vmbus/trans-table.ts';
import { decodeLib, encodeLib } from '../../src/vmbus/save-chunks.ts';
import { compareTx, isTxId, nextTxId, toTxId, txAdd, U64_MAX } from '../../src/vmbus/tx-id.ts';

const EDGE = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, U64_MAX - 1n, U64_MAX];
const anyU64 = fc.oneof(fc.constantFrom(...EDGE), fc.bigInt({ min: 0n, max: U64_MAX }));

describe('TxId', () => {
  it('has one canonical form per id: a number up to 2^53 - 1, a bigint above', () => {
    fc.assert(
      fc.property(anyU64, (v) => {
        const id = toTxId(v);
        expect(isTxId(id)).toBe(true);
        expect(BigInt(id)).toBe(v);
        expect(typeof id).toBe(v <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'bigint');
        expect(toTxId(v.toString())).toBe(id);
        expect(BigInt(nextTxId(id))).toBe(v === U64_MAX ? 0n : v + 1n);
        expect(BigInt(txAdd(id, 3))).toBe((v + 3n) & U64_MAX);
      }),
    );
    // The step that a double cannot take: 2^53 -> 2^53 + 1.
    expect(nextTxId(2 ** 53 - 1)).toBe(2n ** 53n);
    expect(nextTxId(2n ** 53n)).toBe(2n ** 53n + 1n);
    expect(() => toTxId(2 ** 53)).toThrow(RangeError);
    expect(() => toTxId(U64_MAX + 1n)).toThrow(RangeError);
    expect(compareTx(2 ** 53 - 1, 2n ** 53n)).toBeLessThan(0);
  });

  it('crosses the ring exactly, in a packet that wraps and in one that does not', () => {
    fc.assert(
      fc.property(fc.array(anyU64, { minLength: 1, maxLength: 40 }), fc.nat(4000), (ids, pad) => {
        const sab = new SharedArrayBuffer(ringBytes(1));
        const mem = new RingMemory(sab, 0, 1);
        mem.initialize();
        const out = new OutgoingRing(mem);
        const inc = new IncomingRing(mem);
        // Move both indices round so that descriptors land on every part of the data area.
        const skip = (pad % 400) * 8;
        if (skip >= 24 && out.tryWrite(PacketType.dataInBand, 0, 0, new Uint8Array(skip - 24))) {
          out.commit();
          inc.advance(inc.peek()!);
          inc.commit();
        }
        for (const v of ids) {
          expect(out.tryWrite(PacketType.dataInBand, 1, toTxId(v), new Uint8Array(8))).toBe(true);
          out.commit();
          const view = inc.peek()!;
          expect(view.transId).toBe(toTxId(v));
          inc.advance(view);
          inc.commit();
        }
      }),
      { numRuns: 200 },
    );
  });

  it('is a key of the awaiting table, beside number ids, walked in ascending order', () => {
    const t = new TransactionTable<{ v: bigint }>();
    const ids = [U64_MAX, 5n, 2n ** 53n + 1n, 2n ** 53n - 1n, 2n ** 53n];
    for (const v of ids) t.set(toTxId(v), { v });
    expect(t.size).toBe(5);
    expect(t.ids().map(BigInt)).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
    expect(t.get(2n ** 53n + 1n)?.v).toBe(2n ** 53n + 1n);
    expect(t.has(2n ** 53n + 2n)).toBe(false);
    expect(t.delete(U64_MAX)).toBe(true);
    expect(t.get(U64_MAX)).toBeUndefined();
    expect(t.size).toBe(4);
    t.clear();
    expect(t.size).toBe(0);
  });

  it('is saved in the LibBuf and read back exactly', () => {
    for (const v of EDGE) {
      const transId = toTxId(v);
      const lib = decodeLib(encodeLib({ transId, wantCompletion: true, where: 'awaiting', payload: new Uint8Array(0) }))!;
      expect(lib.transId).toBe(transId);
    }
  });
});
