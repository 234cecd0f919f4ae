// The VSP's SaveBuf record for one host transaction (lab/drivers/PROTOCOL.md,
// "Save and restore: the VSP's SaveBuf"): 32 bytes, little-endian.

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
  const dv = new DataView(b.buffer);
  dv.setUint32(0, SAVEBUF_MAGIC, true);
  dv.setUint16(4, SAVEBUF_VERSION, true);
  dv.setUint16(6, s.type, true);
  dv.setUint32(8, s.tx >>> 0, true);
  dv.setUint32(12, Math.floor(s.tx / 0x100000000), true);
  dv.setUint32(16, s.length, true);
  dv.setUint32(20, s.hold, true);
  dv.setUint32(24, parseInt(s.digest.slice(8), 16), true);
  dv.setUint32(28, parseInt(s.digest.slice(0, 8), 16), true);
  return b;
}

/** Parses a record; null when it is not one (wrong size, magic or version). */
export function decodeSaveRecord(b: Uint8Array): HostTxState | null {
  if (b.length !== SAVEBUF_SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0, true) !== SAVEBUF_MAGIC || dv.getUint16(4, true) !== SAVEBUF_VERSION) return null;
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  // Fields in the order the VSP builds them on send: one object shape either way.
  return {
    tx: dv.getUint32(8, true) + dv.getUint32(12, true) * 0x100000000,
    type: dv.getUint16(6, true),
    length: dv.getUint32(16, true),
    hold: dv.getUint32(20, true),
    digest: hex(dv.getUint32(28, true)) + hex(dv.getUint32(24, true)),
  };
}
