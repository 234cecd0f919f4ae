// The blockq VSP's SaveBuf record for one host event in flight (PROTOCOL.md, "SaveBuf").
// Its size varies with the event (32, 40 or 48 bytes), so the two-call sizing of
// EvtVmbChannelSavePacket is asked a different size from one packet to the next.

import type { TxId } from '../../src/vmbus/tx-id.ts';
import { txMod } from '../../src/vmbus/tx-id.ts';
import { getU16, getU32, getU64, putU16, putU32, putU64 } from '../../src/vmbus/le-bytes.ts';

export const SAVE_MAGIC = 0x5153_4b42; // "BKSQ"
export const SAVE_VERSION = 1;

/** What the VSP keeps per host event (its packet's pointer) and saves. */
export interface EventState {
  tx: TxId;
  type: number;
  length: number;
  hold: number;
  digestHi: number;
  digestLo: number;
}

/** The record's size for event `tx`: 32 bytes, plus 8 or 16 bytes of padding by tx. */
export function recordSize(tx: TxId): number {
  return 32 + 8 * txMod(tx, 3);
}

export function writeRecord(b: Uint8Array, s: EventState): number {
  const n = recordSize(s.tx);
  putU32(b, 0, SAVE_MAGIC);
  putU16(b, 4, SAVE_VERSION);
  putU16(b, 6, n);
  putU64(b, 8, s.tx);
  putU32(b, 16, s.length);
  putU32(b, 20, s.hold);
  putU32(b, 24, s.digestLo);
  putU32(b, 28, s.digestHi);
  b.fill(0, 32, n);
  return n;
}

/** The record's contents; null when it is not one (size, magic, version or length wrong). */
export function readRecord(b: Uint8Array, type: number): EventState | null {
  if (b.length < 32 || getU32(b, 0) !== SAVE_MAGIC || getU16(b, 4) !== SAVE_VERSION) return null;
  const tx = getU64(b, 8);
  if (getU16(b, 6) !== b.length || recordSize(tx) !== b.length) return null;
  return { tx, type, length: getU32(b, 16), hold: getU32(b, 20), digestHi: getU32(b, 28), digestLo: getU32(b, 24) };
}
