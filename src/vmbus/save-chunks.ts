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

import { txHi, txLo, type TxId } from './tx-id.ts';
import { crc32 } from './crc32.ts';
import { getU32, getU64, putU32, putU64, u64FromHalves } from './le-bytes.ts';

export const CHUNK_MAGIC = 0x434d4b53;
export const CHUNK_VERSION = 2;
/** versions this emulator reads */
const READABLE = new Set([1, 2]);
const HEADER_SIZE_BY_VERSION: Record<number, number> = { 1: 16, 2: 20 };
/** header size of the chunks this emulator writes */
export const CHUNK_HEADER_SIZE = 20;

export const ChunkKind = { header: 1, packet: 2, completion: 3, end: 4 } as const;

type ChunkBody =
  | { kind: 1; packets: number; completions: number; nextTransId: TxId }
  | { kind: 2; lib: Uint8Array; save: Uint8Array }
  | { kind: 3; transId: TxId; payload: Uint8Array }
  | { kind: 4; chunksBefore: number };
/** A chunk; `index` is its position in the stream (absent in version-1 chunks). */
export type Chunk = ChunkBody & { index?: number | undefined };

export class ChunkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkError';
  }
}

function u64(dv: DataView, at: number, v: TxId): void {
  dv.setUint32(at, txLo(v), true);
  dv.setUint32(at + 4, txHi(v), true);
}
function readU64(dv: DataView, at: number): TxId {
  return u64FromHalves(dv.getUint32(at, true), dv.getUint32(at + 4, true));
}

/** Encodes chunk `c` as the stream's chunk number `index` (the save writes the same bytes in place). */
export function encodeChunk(c: Chunk, index: number): Uint8Array {
  const w = new ChunkStreamWriter();
  w.chunk(c, index);
  return w.bytes.slice(0, w.length);
}

/**
 * Writes a chunk stream in place, into one growing buffer: no array per chunk, field or
 * LibBuf (a save writes a few chunks per packet in flight, and building each as its own
 * arrays cost more than the rest of the save). The one encoder of the format:
 * `encodeChunk` writes through it too.
 *
 *   w.chunk({ kind: ChunkKind.end, chunksBefore: 3 });          // a whole chunk
 *   const body = w.begin(ChunkKind.packet, n); ...; w.end();    // one filled in place
 *
 * A chunk is open between `begin` and `end`; `end` fills in its length, CRC and index.
 */
export class ChunkStreamWriter {
  bytes = new Uint8Array(4096);
  private dv = new DataView(this.bytes.buffer);
  /** bytes written so far (closed chunks, plus the open one's body when one is open) */
  length = 0;
  /** where each closed chunk ends, in order */
  readonly ends: number[] = [];
  private open = -1;

  /** Makes room for `n` more bytes. Views taken of `bytes` before are stale after it. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.bytes.subarray(0, this.length));
    this.bytes = bigger;
    this.dv = new DataView(bigger.buffer);
  }

  /** Opens chunk `kind` with room for `bodySize` body bytes; returns where the body starts. */
  begin(kind: number, bodySize: number): number {
    this.reserve(CHUNK_HEADER_SIZE + bodySize);
    const at = this.length;
    this.open = at;
    this.dv.setUint32(at, CHUNK_MAGIC, true);
    this.dv.setUint16(at + 4, CHUNK_VERSION, true);
    this.dv.setUint16(at + 6, kind, true);
    this.length = at + CHUNK_HEADER_SIZE;
    return this.length;
  }

  u32(at: number, v: number): void {
    this.dv.setUint32(at, v, true);
  }
  u64(at: number, v: TxId): void {
    u64(this.dv, at, v);
  }

  /** Appends `n` body bytes the caller fills in (zeroed); returns where they start. */
  skip(n: number): number {
    const at = this.length;
    this.bytes.fill(0, at, at + n);
    this.length += n;
    return at;
  }

  /** Closes the open chunk as the stream's chunk number `index` (by default, its place in this stream). */
  end(index = this.ends.length): void {
    const at = this.open;
    const bodyAt = at + CHUNK_HEADER_SIZE;
    this.dv.setUint32(at + 8, this.length - bodyAt, true);
    this.dv.setUint32(at + 12, crc32(this.bytes, bodyAt, this.length), true);
    this.dv.setUint32(at + 16, index, true);
    this.ends.push(this.length);
    this.open = -1;
  }

  /** Writes a whole chunk `c` (a packet chunk's LibBuf and SaveBuf given as bytes). */
  chunk(c: ChunkBody, index?: number): void {
    const size = bodySize(c);
    const at = this.begin(c.kind, size);
    this.skip(size);
    this.writeBody(c, at);
    this.end(index);
  }

  /** Rewrites closed chunk `index`'s body with `c` (of the same size), and its CRC. */
  rewrite(index: number, c: ChunkBody): void {
    const at = index === 0 ? 0 : this.ends[index - 1]!;
    const bodyAt = at + CHUNK_HEADER_SIZE;
    this.writeBody(c, bodyAt);
    this.dv.setUint32(at + 12, crc32(this.bytes, bodyAt, this.ends[index]!), true);
  }

  /** The body of `c` at `at`, where room was made (the layouts are at the top of the file). */
  private writeBody(c: ChunkBody, at: number): void {
    switch (c.kind) {
      case ChunkKind.header:
        this.u32(at, c.packets);
        this.u32(at + 4, c.completions);
        this.u64(at + 8, c.nextTransId);
        return;
      case ChunkKind.packet:
        this.u32(at, c.lib.length);
        this.u32(at + 4, c.save.length);
        this.bytes.set(c.lib, at + 8);
        this.bytes.set(c.save, at + 8 + c.lib.length);
        return;
      case ChunkKind.completion:
        this.u64(at, c.transId);
        this.u32(at + 8, c.payload.length);
        this.bytes.set(c.payload, at + 12);
        return;
      case ChunkKind.end:
        this.u32(at, c.chunksBefore);
        return;
    }
  }

  /** Drops the open chunk, as if it had never been begun. */
  discard(): void {
    this.length = this.open;
    this.open = -1;
  }
}

/** A chunk body's size in bytes. */
function bodySize(c: ChunkBody): number {
  switch (c.kind) {
    case ChunkKind.header:
      return 16;
    case ChunkKind.packet:
      return 8 + c.lib.length + c.save.length;
    case ChunkKind.completion:
      return 12 + c.payload.length;
    case ChunkKind.end:
      return 4;
  }
}

/**
 * Writes a LibBuf (see encodeLib) at `at` of `b`, which has room for it. Field by field,
 * not as a LibPacketState: the save writes one per packet in flight.
 */
export function writeLib(b: Uint8Array, at: number, transId: TxId, wantCompletion: boolean, where: LibPacketState['where'], payload: Uint8Array): void {
  putU64(b, at, transId);
  putU32(b, at + 8, (wantCompletion ? 1 : 0) | (where === 'queued' ? 2 : 0));
  putU32(b, at + 12, payload.length);
  putU32(b, at + 16, LIB_MAGIC);
  b.set(payload, at + 20);
}

/** The shortest body each known kind can have (an unknown kind is refused after this check). */
const MIN_BODY: Record<number, number> = { [ChunkKind.header]: 16, [ChunkKind.packet]: 8, [ChunkKind.completion]: 12, [ChunkKind.end]: 4 };

/**
 * Reads a buffer of chunks in place, one chunk at a time: the fields of the current chunk
 * are the cursor's own, so reading a chunk allocates nothing (a restore reads one per
 * packet in flight, and an object and two views per chunk were a fifth of what explore
 * allocated). `next` throws ChunkError on anything a correct SaveContinue could not have
 * produced (a partial chunk included); `rewind` reads the buffer again, and a second pass
 * skips the checksums the first one checked.
 */
export class ChunkCursor {
  readonly buf: Uint8Array;
  private readonly dv: DataView;
  private at = 0;
  private checked = false;
  /** chunks read so far in this pass */
  count = 0;
  // The current chunk. Which fields mean something depends on `kind`.
  kind = 0;
  /** its position in the stream (undefined in version-1 chunks) */
  index: number | undefined = undefined;
  /** header: */
  packets = 0;
  completions = 0;
  nextTransId: TxId = 0;
  /** packet: where its LibBuf and SaveBuf are in `buf` */
  libAt = 0;
  libLen = 0;
  saveAt = 0;
  saveLen = 0;
  /** completion: */
  transId: TxId = 0;
  payloadAt = 0;
  payloadLen = 0;
  /** end: */
  chunksBefore = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Back to the first chunk. The checksums were checked if the last pass reached the end. */
  rewind(): void {
    this.checked = this.at >= this.buf.length;
    this.at = 0;
    this.count = 0;
  }

  /** Moves to the next chunk; false at the end of the buffer. */
  next(): boolean {
    const { buf, dv } = this;
    const at = this.at;
    if (at >= buf.length) return false;
    if (buf.length - at < 8) throw new ChunkError(`partial chunk header at byte ${at}`);
    if (dv.getUint32(at, true) !== CHUNK_MAGIC) throw new ChunkError(`bad chunk magic at byte ${at}`);
    const version = dv.getUint16(at + 4, true);
    if (!READABLE.has(version)) throw new ChunkError(`chunk version ${version} at byte ${at}; this emulator reads ${[...READABLE].join(' and ')}`);
    const headerSize = HEADER_SIZE_BY_VERSION[version]!;
    if (buf.length - at < headerSize) throw new ChunkError(`partial chunk header at byte ${at}`);
    const kind = dv.getUint16(at + 6, true);
    const len = dv.getUint32(at + 8, true);
    if (at + headerSize + len > buf.length) throw new ChunkError(`chunk at byte ${at} is cut short`);
    const b = at + headerSize;
    if (!this.checked && crc32(buf, b, b + len) !== dv.getUint32(at + 12, true)) throw new ChunkError(`chunk at byte ${at} fails its checksum`);
    if (len < MIN_BODY[kind]!) throw new ChunkError(`chunk at byte ${at} is too short for its kind ${kind}`);
    switch (kind) {
      case ChunkKind.header:
        this.packets = dv.getUint32(b, true);
        this.completions = dv.getUint32(b + 4, true);
        this.nextTransId = readU64(dv, b + 8);
        break;
      case ChunkKind.packet: {
        const libLen = dv.getUint32(b, true);
        const saveLen = dv.getUint32(b + 4, true);
        if (8 + libLen + saveLen !== len) throw new ChunkError(`packet chunk at byte ${at}: lengths do not add up`);
        this.libAt = b + 8;
        this.libLen = libLen;
        this.saveAt = b + 8 + libLen;
        this.saveLen = saveLen;
        break;
      }
      case ChunkKind.completion: {
        const plen = dv.getUint32(b + 8, true);
        if (12 + plen !== len) throw new ChunkError(`completion chunk at byte ${at}: lengths do not add up`);
        this.transId = readU64(dv, b);
        this.payloadAt = b + 12;
        this.payloadLen = plen;
        break;
      }
      case ChunkKind.end:
        this.chunksBefore = dv.getUint32(b, true);
        break;
      default:
        throw new ChunkError(`unknown chunk kind ${kind} at byte ${at}`);
    }
    this.kind = kind;
    this.index = version >= 2 ? dv.getUint32(at + 16, true) : undefined;
    this.at = b + len;
    this.count++;
    return true;
  }

  /** The current chunk as a Chunk object; a packet's LibBuf and SaveBuf are views of `buf`. */
  chunk(): Chunk {
    const { buf, index } = this;
    switch (this.kind) {
      case ChunkKind.header:
        return { index, kind: ChunkKind.header, packets: this.packets, completions: this.completions, nextTransId: this.nextTransId };
      case ChunkKind.packet:
        return { index, kind: ChunkKind.packet, lib: buf.subarray(this.libAt, this.libAt + this.libLen), save: buf.subarray(this.saveAt, this.saveAt + this.saveLen) };
      case ChunkKind.completion:
        return { index, kind: ChunkKind.completion, transId: this.transId, payload: buf.slice(this.payloadAt, this.payloadAt + this.payloadLen) };
      default:
        return { index, kind: ChunkKind.end, chunksBefore: this.chunksBefore };
    }
  }
}

/**
 * Splits a buffer into whole chunks and decodes them. Throws ChunkError on anything a
 * correct SaveContinue could not have produced (a partial chunk included).
 */
export function decodeChunks(buf: Uint8Array): Chunk[] {
  const out: Chunk[] = [];
  const c = new ChunkCursor(buf);
  while (c.next()) out.push(c.chunk());
  return out;
}

/** KMCL's own per-packet state (LibBuf): what VmbPacketRestore puts back. */
export interface LibPacketState {
  transId: TxId;
  wantCompletion: boolean;
  /** queued in the library (ring was full), or in the ring awaiting its completion */
  where: 'queued' | 'awaiting';
  /** the packet's payload, kept for queued packets (they are not in the ring yet) */
  payload: Uint8Array;
}

/** "LIB1", so a stray SaveBuf is not taken for a LibBuf. */
const LIB_MAGIC = 0x4c494231;
/** LibBuf bytes before the payload. */
export const LIB_HEADER_SIZE = 20;

export function encodeLib(p: LibPacketState): Uint8Array {
  const b = new Uint8Array(LIB_HEADER_SIZE + p.payload.length);
  writeLib(b, 0, p.transId, p.wantCompletion, p.where, p.payload);
  return b;
}

/** Zero-length, so no one can write to it: safe to share. */
const NO_PAYLOAD = new Uint8Array(0);

export function decodeLib(b: Uint8Array): LibPacketState | null {
  const out: LibPacketState = { transId: 0, wantCompletion: false, where: 'awaiting', payload: NO_PAYLOAD };
  return decodeLibInto(b, out) ? out : null;
}

/**
 * decodeLib into `out` (one object reused per restore, not one per packet); false, and
 * `out` unchanged, when `b` is not a LibBuf.
 */
export function decodeLibInto(b: Uint8Array, out: LibPacketState): boolean {
  if (b.length < 20) return false;
  // Read on the bytes: a DataView per packet restored cost more than the decoding.
  if (getU32(b, 16) !== LIB_MAGIC) return false;
  const flags = getU32(b, 8);
  const len = getU32(b, 12);
  if (20 + len !== b.length || (flags & ~3) !== 0) return false;
  out.transId = getU64(b, 0);
  out.wantCompletion = (flags & 1) !== 0;
  out.where = (flags & 2) !== 0 ? 'queued' : 'awaiting';
  // Packets awaiting their completion keep no payload: share one empty array for them.
  out.payload = len === 0 ? NO_PAYLOAD : b.slice(20);
  return true;
}
