// The KMCL save stream's chunks (src/vmbus/save-chunks.ts): every chunk decodes to what
// was encoded, a buffer must hold whole chunks, and KMCL's LibBuf is told apart from
// anything else.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHUNK_HEADER_SIZE, ChunkError, ChunkKind, decodeChunks, decodeLib, encodeChunk, encodeLib, type Chunk } from '../../src/vmbus/save-chunks.ts';

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const u53 = fc.maxSafeNat();
const chunkArb: fc.Arbitrary<Chunk> = fc.oneof(
  fc.record({ kind: fc.constant(ChunkKind.header), packets: fc.nat(0xffffffff), completions: fc.nat(0xffffffff), nextTransId: u53 }),
  fc.record({ kind: fc.constant(ChunkKind.packet), lib: bytes(300), save: bytes(300) }),
  fc.record({ kind: fc.constant(ChunkKind.completion), transId: u53, payload: bytes(300) }),
  fc.record({ kind: fc.constant(ChunkKind.end), chunksBefore: fc.nat(0xffffffff) }),
);
const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe('save chunks', () => {
  it('decodes any sequence of chunks to what was encoded', () => {
    fc.assert(
      fc.property(fc.array(chunkArb, { maxLength: 12 }), (chunks) => {
        expect(decodeChunks(concat(chunks.map(encodeChunk)))).toEqual(chunks.map((c, i) => ({ ...c, index: i })));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a buffer that ends inside a chunk', () => {
    fc.assert(
      fc.property(fc.array(chunkArb, { minLength: 1, maxLength: 6 }), fc.nat(), (chunks, cut) => {
        const whole = concat(chunks.map(encodeChunk));
        const ends = new Set<number>();
        let at = 0;
        for (const [i, c] of chunks.entries()) ends.add((at += encodeChunk(c, i).length));
        const len = cut % whole.length;
        fc.pre(len > 0 && !ends.has(len));
        expect(() => decodeChunks(whole.subarray(0, len))).toThrow(ChunkError);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an unknown chunk kind, a wrong magic and a wrong version', () => {
    const good = encodeChunk({ kind: ChunkKind.end, chunksBefore: 1 }, 0);
    const edit = (at: number, v: number) => {
      const b = good.slice();
      b[at] = v;
      return b;
    };
    expect(() => decodeChunks(edit(6, 9))).toThrow(/unknown chunk kind 9/);
    expect(() => decodeChunks(edit(0, 0))).toThrow(/magic/);
    expect(() => decodeChunks(edit(4, 3))).toThrow(/version 3/);
    expect(good.length).toBe(CHUNK_HEADER_SIZE + 4);
  });

  it('round-trips KMCL\'s per-packet state and refuses a buffer that is not one', () => {
    fc.assert(
      fc.property(u53, fc.boolean(), fc.constantFrom('queued' as const, 'awaiting' as const), bytes(200), (transId, wantCompletion, where, payload) => {
        expect(decodeLib(encodeLib({ transId, wantCompletion, where, payload }))).toEqual({ transId, wantCompletion, where, payload });
      }),
      { numRuns: 100 },
    );
    const lib = encodeLib({ transId: 1, wantCompletion: true, where: 'queued', payload: new Uint8Array([1, 2]) });
    expect(decodeLib(lib.subarray(0, lib.length - 1))).toBeNull();
    expect(decodeLib(new TextEncoder().encode('a VSP SaveBuf, not a LibBuf'))).toBeNull();
    const badFlags = lib.slice();
    badFlags[8] = 0x7;
    expect(decodeLib(badFlags)).toBeNull();
  });
});
