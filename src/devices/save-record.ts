// The VSP's SaveBuf record for one host transaction (lab/drivers/PROTOCOL.md,
// "Save and restore: the VSP's SaveBuf"): 32 bytes, little-endian.

import { hexOfHalves } from './digest.ts';
import { putU16, putU32, getU16, getU32 } from '../vmbus/le-bytes.ts';

export const SAVEBUF_MAGIC = 0x53505356; // "VSPS"
export const SAVEBUF_VERSION = 1;
export const SAVEBUF_SIZE = 32;

/** What the VSP keeps per host transaction, reachable through VmbPacketGetPointer. */
export interface HostTxState {
  tx: number;
  type: number;
  length: number;
  hold: number;
  /** FNV-1a 64 of the message as sent, 16 hex digits */
  digest: string;
}

export function encodeSaveRecord(s: HostTxState): Uint8Array {
  const b = new Uint8Array(SAVEBUF_SIZE);
  writeSaveRecord(b, s);
  return b;
}

/**
 * Writes the record into the first SAVEBUF_SIZE bytes of `b` (the SaveBuf KMCL hands the
 * VSP). `digestHi` / `digestLo`: the digest's halves when the caller keeps them (saves
 * parsing the hex per packet saved).
 */
export function writeSaveRecord(b: Uint8Array, s: HostTxState, digestHi = hexWord(s.digest, 0), digestLo = hexWord(s.digest, 8)): void {
  // Fields are written on the bytes: a DataView per record cost more than the record.
  putU32(b, 0, SAVEBUF_MAGIC);
  putU16(b, 4, SAVEBUF_VERSION);
  putU16(b, 6, s.type);
  putU32(b, 8, s.tx >>> 0);
  putU32(b, 12, Math.floor(s.tx / 0x100000000));
  putU32(b, 16, s.length);
  putU32(b, 20, s.hold);
  putU32(b, 24, digestLo);
  putU32(b, 28, digestHi);
}

/** A record as read back: the state, with the digest's halves as the record stores them. */
export interface SavedHostTx extends HostTxState {
  digestHi: number;
  digestLo: number;
}

/** Parses a record; null when it is not one (wrong size, magic or version). */
export function decodeSaveRecord(b: Uint8Array): SavedHostTx | null {
  if (b.length !== SAVEBUF_SIZE) return null;
  if (getU32(b, 0) !== SAVEBUF_MAGIC || getU16(b, 4) !== SAVEBUF_VERSION) return null;
  const hi = getU32(b, 28);
  const lo = getU32(b, 24);
  // Fields in the order the VSP builds them on send: one object shape either way, and
  // the VSP keeps this very object (one allocation per packet restored).
  return {
    tx: getU32(b, 8) + getU32(b, 12) * 0x100000000,
    type: getU16(b, 6),
    length: getU32(b, 16),
    hold: getU32(b, 20),
    digest: hexOfHalves(hi, lo),
    digestHi: hi,
    digestLo: lo,
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
