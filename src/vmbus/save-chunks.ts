// The KMCL channel save stream: what VmbChannelSaveContinue hands out and
// VmbChannelRestoreFromBuffer takes back.
//
// The real format is private to vmbkmcl.sys (SPEC-NOTES 13.7). Ours is a sequence of
// chunks, each self-describing and checksummed, so that RestoreFromBuffer can insist on
// whole chunks, in order, and reject a damaged one before it changes anything:
//
//   +0  u32 magic 0x434d4b53 ("SKMC")
//   +4  u16 version (2; version 1 had no index and a 16-byte header, and is still read)
//   +6  u16 kind: 1 header, 2 packet, 3 queued completion, 4 end
//   +8  u32 body length
//   +12 u32 CRC-32 of the body
//   +16 u32 index: the chunk's position in the stream, so buffers fed out of order are refused
//   +20 body
//
// header:     u32 packets, u32 completions, u64 next transaction id
// packet:     u32 libLen, u32 saveLen, LibBuf (KMCL's own per-packet state), SaveBuf (the VSP's)
// completion: u64 transaction id, u32 length, payload
// end:        u32 number of chunks before it

import { crc32 } from 'node:zlib';

export const CHUNK_MAGIC = 0x434d4b53;
export const CHUNK_VERSION = 2;
/** versions this emulator reads */
const READABLE = new Set([1, 2]);
const HEADER_SIZE_BY_VERSION: Record<number, number> = { 1: 16, 2: 20 };
/** header size of the chunks this emulator writes */
export const CHUNK_HEADER_SIZE = 20;

export const ChunkKind = { header: 1, packet: 2, completion: 3, end: 4 } as const;

type ChunkBody =
  | { kind: 1; packets: number; completions: number; nextTransId: number }
  | { kind: 2; lib: Uint8Array; save: Uint8Array }
  | { kind: 3; transId: number; payload: Uint8Array }
  | { kind: 4; chunksBefore: number };
/** A chunk; `index` is its position in the stream (absent in version-1 chunks). */
export type Chunk = ChunkBody & { index?: number | undefined };

export class ChunkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkError';
  }
}

function frame(kind: number, body: Uint8Array, index: number): Uint8Array {
  const header = HEADER_SIZE_BY_VERSION[CHUNK_VERSION]!;
  const out = new Uint8Array(header + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, CHUNK_MAGIC, true);
  dv.setUint16(4, CHUNK_VERSION, true);
  dv.setUint16(6, kind, true);
  dv.setUint32(8, body.length, true);
  dv.setUint32(12, crc32(body), true);
  dv.setUint32(16, index, true);
  out.set(body, header);
  return out;
}

function u64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v >>> 0, true);
  dv.setUint32(at + 4, Math.floor(v / 0x100000000), true);
}
function readU64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x100000000;
}

/** Encodes chunk `c` as the stream's chunk number `index`. */
export function encodeChunk(c: Chunk, index: number): Uint8Array {
  switch (c.kind) {
    case ChunkKind.header: {
      const b = new Uint8Array(16);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, c.packets, true);
      dv.setUint32(4, c.completions, true);
      u64(dv, 8, c.nextTransId);
      return frame(c.kind, b, index);
    }
    case ChunkKind.packet: {
      const b = new Uint8Array(8 + c.lib.length + c.save.length);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, c.lib.length, true);
      dv.setUint32(4, c.save.length, true);
      b.set(c.lib, 8);
      b.set(c.save, 8 + c.lib.length);
      return frame(c.kind, b, index);
    }
    case ChunkKind.completion: {
      const b = new Uint8Array(12 + c.payload.length);
      const dv = new DataView(b.buffer);
      u64(dv, 0, c.transId);
      dv.setUint32(8, c.payload.length, true);
      b.set(c.payload, 12);
      return frame(c.kind, b, index);
    }
    case ChunkKind.end: {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, c.chunksBefore, true);
      return frame(c.kind, b, index);
    }
  }
}

/**
 * Splits a buffer into whole chunks and decodes them. Throws ChunkError on anything a
 * correct SaveContinue could not have produced (a partial chunk included).
 */
export function decodeChunks(buf: Uint8Array): Chunk[] {
  const out: Chunk[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 8) throw new ChunkError(`partial chunk header at byte ${at}`);
    if (dv.getUint32(at, true) !== CHUNK_MAGIC) throw new ChunkError(`bad chunk magic at byte ${at}`);
    const version = dv.getUint16(at + 4, true);
    if (!READABLE.has(version)) throw new ChunkError(`chunk version ${version} at byte ${at}; this emulator reads ${[...READABLE].join(' and ')}`);
    const headerSize = HEADER_SIZE_BY_VERSION[version]!;
    if (buf.length - at < headerSize) throw new ChunkError(`partial chunk header at byte ${at}`);
    const kind = dv.getUint16(at + 6, true);
    const len = dv.getUint32(at + 8, true);
    const index = version >= 2 ? dv.getUint32(at + 16, true) : undefined;
    if (at + headerSize + len > buf.length) throw new ChunkError(`chunk at byte ${at} is cut short`);
    const body = buf.subarray(at + headerSize, at + headerSize + len);
    if (crc32(body) !== dv.getUint32(at + 12, true)) throw new ChunkError(`chunk at byte ${at} fails its checksum`);
    const bdv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const need = (n: number): void => {
      if (len < n) throw new ChunkError(`chunk at byte ${at} is too short for its kind ${kind}`);
    };
    switch (kind) {
      case ChunkKind.header:
        need(16);
        out.push({ index, kind, packets: bdv.getUint32(0, true), completions: bdv.getUint32(4, true), nextTransId: readU64(bdv, 8) });
        break;
      case ChunkKind.packet: {
        need(8);
        const libLen = bdv.getUint32(0, true);
        const saveLen = bdv.getUint32(4, true);
        if (8 + libLen + saveLen !== len) throw new ChunkError(`packet chunk at byte ${at}: lengths do not add up`);
        out.push({ index, kind, lib: body.slice(8, 8 + libLen), save: body.slice(8 + libLen) });
        break;
      }
      case ChunkKind.completion: {
        need(12);
        const plen = bdv.getUint32(8, true);
        if (12 + plen !== len) throw new ChunkError(`completion chunk at byte ${at}: lengths do not add up`);
        out.push({ index, kind, transId: readU64(bdv, 0), payload: body.slice(12) });
        break;
      }
      case ChunkKind.end:
        need(4);
        out.push({ index, kind, chunksBefore: bdv.getUint32(0, true) });
        break;
      default:
        throw new ChunkError(`unknown chunk kind ${kind} at byte ${at}`);
    }
    at += headerSize + len;
  }
  return out;
}

/** KMCL's own per-packet state (LibBuf): what VmbPacketRestore puts back. */
export interface LibPacketState {
  transId: number;
  wantCompletion: boolean;
  /** queued in the library (ring was full), or in the ring awaiting its completion */
  where: 'queued' | 'awaiting';
  /** the packet's payload, kept for queued packets (they are not in the ring yet) */
  payload: Uint8Array;
}

export function encodeLib(p: LibPacketState): Uint8Array {
  const b = new Uint8Array(20 + p.payload.length);
  const dv = new DataView(b.buffer);
  u64(dv, 0, p.transId);
  dv.setUint32(8, (p.wantCompletion ? 1 : 0) | (p.where === 'queued' ? 2 : 0), true);
  dv.setUint32(12, p.payload.length, true);
  dv.setUint32(16, 0x4c494231, true); // "LIB1", so a stray SaveBuf is not taken for a LibBuf
  b.set(p.payload, 20);
  return b;
}

export function decodeLib(b: Uint8Array): LibPacketState | null {
  if (b.length < 20) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(16, true) !== 0x4c494231) return null;
  const flags = dv.getUint32(8, true);
  const len = dv.getUint32(12, true);
  if (20 + len !== b.length || (flags & ~3) !== 0) return null;
  return {
    transId: readU64(dv, 0),
    wantCompletion: (flags & 1) !== 0,
    where: (flags & 2) !== 0 ? 'queued' : 'awaiting',
    payload: b.slice(20),
  };
}
