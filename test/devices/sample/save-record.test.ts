// The sample VSP's SaveBuf record (devices/sample/save-record.ts): a record read back and
// written again is the same 32 bytes, which is what lets the VSP keep a restored record's
// digest for its next save of the same transaction.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SAVEBUF_MAGIC, SAVEBUF_SIZE, SAVEBUF_VERSION, readSaveRecord, writeSaveRecord } from '../../../devices/sample/save-record.ts';
import { digestHex } from '../../../src/devices/digest.ts';

/** 32 bytes with a valid magic and version and anything else in the other fields. */
const record = fc.uint8Array({ minLength: SAVEBUF_SIZE, maxLength: SAVEBUF_SIZE }).map((b) => {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(0, SAVEBUF_MAGIC, true);
  dv.setUint16(4, SAVEBUF_VERSION, true);
  return b;
});

describe('sample SaveBuf record', () => {
  it('writes back, byte for byte, any record it reads (so the digest of one is the digest of the other)', () => {
    fc.assert(
      fc.property(record, (b) => {
        const r = readSaveRecord(b);
        expect(r).not.toBeNull();
        expect(r!.saveDigest).toBeNull();
        const again = new Uint8Array(SAVEBUF_SIZE);
        writeSaveRecord(again, r!, r!.digestHi, r!.digestLo);
        expect(again).toEqual(b);
        expect(digestHex(again)).toBe(digestHex(b));
      }),
    );
  });

  it('refuses a buffer of another length or with a wrong magic or version', () => {
    fc.assert(
      fc.property(record, fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 255 }), (b, at, flip) => {
        const bad = b.slice();
        bad[at] = bad[at]! ^ flip;
        expect(readSaveRecord(bad)).toBeNull();
        expect(readSaveRecord(b.subarray(0, SAVEBUF_SIZE - 1))).toBeNull();
      }),
    );
  });
});
