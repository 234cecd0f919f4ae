// The VSP's SaveBuf record for one host transaction (lab/drivers/PROTOCOL.md,
// "Save and restore: the VSP's SaveBuf"): 32 bytes, little-endian.

import type { TxId } from '../../src/vmbus/tx-id.ts';
import { hexOfHalves } from '../../src/devices/digest.ts';
import { putU16, putU32, putU64, getU16, getU32, getU64 } from '../../src/vmbus/le-bytes.ts';

export const SAVEBUF_MAGIC = 0x53505356; // "VSPS"
export const SAVEBUF_VERSION = 1;
export const SAVEBUF_SIZE = 32;

/** A host transaction's fields in the record, besides its digest. */
export interface HostTxFields {
  tx: TxId;
  type: number;
  length: number;
  hold: number;
}

/** A record's contents, the digest as PROTOCOL.md writes it. */
export interface HostTxState extends HostTxFields {
  /** FNV-1a 64 of the message as sent, 16 hex digits */
  digest: string;
}

/** A record's contents, the digest as its two 32-bit halves (what the VSP keeps). */
export interface SavedHostTx extends HostTxFields {
  digestHi: number;
  digestLo: number;
  /**
   * The record's own digest (FNV-1a 64 of its SAVEBUF_SIZE bytes, the trace's saveDigest)
   * once known, else null. Not part of the record: a memo, valid because the record is a
   * function of the fields above, which never change once the object is built.
   */
  saveDigest: string | null;
}

export function encodeSaveRecord(s: HostTxState): Uint8Array {
  const b = new Uint8Array(SAVEBUF_SIZE);
  writeSaveRecord(b, s, hexWord(s.digest, 0), hexWord(s.digest, 8));
  return b;
}

/** Writes the record into the first SAVEBUF_SIZE bytes of `b` (the SaveBuf KMCL hands the VSP). */
export function writeSaveRecord(b: Uint8Array, s: HostTxFields, digestHi: number, digestLo: number): void {
  // Fields are written on the bytes: a DataView per record cost more than the record.
  putU32(b, 0, SAVEBUF_MAGIC);
  putU16(b, 4, SAVEBUF_VERSION);
  putU16(b, 6, s.type);
  putU64(b, 8, s.tx);
  putU32(b, 16, s.length);
  putU32(b, 20, s.hold);
  putU32(b, 24, digestLo);
  putU32(b, 28, digestHi);
}

/** Parses a record; null when it is not one (wrong size, magic or version). */
export function decodeSaveRecord(b: Uint8Array): HostTxState | null {
  const r = readSaveRecord(b);
  return r && { tx: r.tx, type: r.type, length: r.length, hold: r.hold, digest: hexOfHalves(r.digestHi, r.digestLo) };
}

/**
 * Parses a record into what the VSP keeps; null when it is not one. The VSP keeps this
 * very object, so its fields are in the order the VSP builds them on send (one object
 * shape either way), and the digest stays numbers: a hex string per packet restored was
 * a tenth of what restoring allocated.
 * Invariant: writeSaveRecord of what this returns writes `b` back byte for byte (every
 * field is read whole; magic and version are checked), so the digest of `b` is that of
 * every record later written from it (the VSP's saveDigest memo relies on it).
 */
export function readSaveRecord(b: Uint8Array): SavedHostTx | null {
  if (b.length !== SAVEBUF_SIZE) return null;
  if (getU32(b, 0) !== SAVEBUF_MAGIC || getU16(b, 4) !== SAVEBUF_VERSION) return null;
  return {
    tx: getU64(b, 8),
    type: getU16(b, 6),
    length: getU32(b, 16),
    hold: getU32(b, 20),
    digestHi: getU32(b, 28),
    digestLo: getU32(b, 24),
    saveDigest: null,
  };
}

/** The 8 hex digits of `hex` from `at` as a number (parseInt of that slice, without the slice). */
function hexWord(hex: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = hex.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    // Anything but 8 hex digits: let parseInt decide, as the record always did.
    if (d < 0) return parseInt(hex.slice(at, at + 8), 16);
    v = v * 16 + d;
  }
  return v;
}
