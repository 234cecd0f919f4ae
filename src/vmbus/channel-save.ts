// Save and restore of a server channel's packet state (SPEC-NOTES 6, server only).
//
//   VmbChannelSaveBegin -> VmbChannelSaveContinue ... -> VmbChannelSaveEnd
//   VmbChannelRestoreFromBuffer ... (EvtVmbChannelRestorePacket -> VmbPacketAllocate
//                                    + VmbPacketRestore for each saved packet)
//
// What is saved: every packet object in use (queued inside the library because the
// ring was full, or in the ring awaiting its completion), each with KMCL's own LibBuf
// and the VSP's SaveBuf from EvtVmbChannelSavePacket, plus completions for the guest
// still queued in the library. Ring contents are not saved here: they are guest memory.
//
// Status traps: SaveContinue returns STATUS_BUFFER_OVERFLOW (0x80000005) for "wrote
// some, call again" and RestoreFromBuffer STATUS_MORE_PROCESSING_REQUIRED (0xC0000016)
// for "feed the next buffer". Neither is NT_SUCCESS, and neither is a failure.

import type { Channel } from './channel.ts';
import { ChunkCursor, ChunkError, ChunkKind, ChunkStreamWriter, LIB_HEADER_SIZE, decodeLibInto, writeLib, type LibPacketState } from './save-chunks.ts';
import { STATUS, ntSuccess, type NtStatus } from './status.ts';
import { compareTx, type TxId } from './tx-id.ts';
import type { VmbPacket } from './packet.ts';
import { fifoClear, fifoPush } from './fifo.ts';

interface SaveContext {
  /** The encoded stream, produced on the first SaveContinue. */
  stream: { bytes: Uint8Array; ends: number[] } | null;
  /** how many of the stream's units (chunks; one unit when packed) were handed out */
  next: number;
  /** LibBuf length of the packet whose SavePacket callback is running (for traces). */
  libLen: number;
  /** SaveBuf length the last SavePacket protocol produced */
  saveLen: number;
  /** the SavePacket callback's size answer, one object for the whole save */
  sizing: { bytesNeeded: number };
}

interface RestoreContext {
  headerSeen: boolean;
  chunks: number;
  nextTransId: TxId;
  /** What this restore added, so a failure can take it all back. */
  packets: VmbPacket[];
  completions: number;
}

const saving = new WeakMap<Channel, SaveContext>();
const restoring = new WeakMap<Channel, RestoreContext>();

export interface SaveContinueResult {
  status: NtStatus;
  bytesFilled: number;
  bytesRequired: number;
}

/** VmbChannelSaveBegin. */
export function channelSaveBegin(ch: Channel): NtStatus {
  if (!ch.isServer || !ch.savePacket) return STATUS.INVALID_PARAMETER_1;
  if (saving.has(ch)) return STATUS.INVALID_DEVICE_STATE;
  const st = ch.state;
  // A VM save covers every channel the VSP offered, opened or not (REVIEW E9 [I]): an
  // offered channel that no guest opened, or one the guest closed, saves what it queued.
  if (st.conn === 'disabled') return STATUS.INVALID_DEVICE_STATE;
  // Pause has not returned on a real system while packets are still held (REVIEW E1).
  if (ch.isPausing) return STATUS.INVALID_DEVICE_STATE;
  if (st.conn === 'open' && st.flow === 'active' && ch.choices.saveWhileActive === 'refuse') return STATUS.INVALID_DEVICE_STATE;
  saving.set(ch, { stream: null, next: 0, libLen: 0, saveLen: 0, sizing: { bytesNeeded: 0 } });
  return STATUS.SUCCESS;
}

/** VmbChannelSaveContinue: hands out whole chunks that fit in `buffer`. */
export function channelSaveContinue(ch: Channel, buffer: Uint8Array): SaveContinueResult {
  const r = channelSaveContinueView(ch, buffer.length);
  if (r.bytes !== null) buffer.set(r.bytes, 0);
  return { status: r.status, bytesFilled: r.bytesFilled, bytesRequired: r.bytesRequired };
}

/** What SaveContinue hands out, as a view of the save's stream: null when nothing fits. */
export interface SaveContinueView extends SaveContinueResult {
  bytes: Uint8Array | null;
}

/**
 * channelSaveContinue for a caller whose buffer is `room` bytes somewhere it writes itself
 * (the KMCL shim: the driver's memory, which the SavePacket callbacks run while the stream
 * is built may grow and so move). The bytes are a view of the stream, which no later call
 * writes (each save builds its own): the caller may keep it.
 */
export function channelSaveContinueView(ch: Channel, room: number): SaveContinueView {
  const ctx = saving.get(ch);
  if (!ctx) return { status: STATUS.INVALID_DEVICE_STATE, bytesFilled: 0, bytesRequired: 0, bytes: null };
  if (ctx.stream === null) {
    const built = buildStream(ch, ctx);
    if (typeof built === 'number') return { status: built, bytesFilled: 0, bytesRequired: 0, bytes: null };
    ctx.stream = built;
  }
  const { bytes, ends } = ctx.stream;
  // Hand out as many whole units as fit, in one piece.
  const start = ctx.next === 0 ? 0 : ends[ctx.next - 1]!;
  let k = ctx.next;
  while (k < ends.length && ends[k]! - start <= room) k++;
  const filled = k === ctx.next ? 0 : ends[k - 1]! - start;
  const out = filled > 0 ? bytes.subarray(start, start + filled) : null;
  ctx.next = k;
  if (k === ends.length) return { status: STATUS.SUCCESS, bytesFilled: filled, bytesRequired: 0, bytes: out };
  if (filled === 0) return { status: STATUS.BUFFER_TOO_SMALL, bytesFilled: 0, bytesRequired: ends[k]! - start, bytes: null };
  // BytesRequired is the size the next call needs (the SaveContinue page; REVIEW E6): the
  // next unit's, which is all a call must be able to take to make progress.
  return { status: STATUS.BUFFER_OVERFLOW, bytesFilled: filled, bytesRequired: ends[k]! - ends[k - 1]!, bytes: out };
}

/** VmbChannelSaveEnd: frees the save context (also after a failed SaveContinue). */
export function channelSaveEnd(ch: Channel): void {
  saving.delete(ch);
}

/** LibBuf length of the packet being saved right now; 0 outside a SavePacket callback. */
export function currentSaveLibLength(ch: Channel): number {
  return saving.get(ch)?.libLen ?? 0;
}

const NO_PAYLOAD = new Uint8Array(0);

/**
 * Encodes the save stream: header, the packets (queued ones first, in queue order, with
 * the completions queued among them; then those awaiting a completion, by transaction
 * id), end. Each unit SaveContinue hands out is a chunk, or the whole stream when packed.
 */
function buildStream(ch: Channel, ctx: SaveContext): { bytes: Uint8Array; ends: number[] } | NtStatus {
  const w = new ChunkStreamWriter();
  // The header goes first, but its counts are known last: it is filled in at the end.
  w.chunk({ kind: ChunkKind.header, packets: 0, completions: 0, nextTransId: 0 });
  let packets = 0;
  let completions = 0;
  // Opens the packet's chunk and runs the SavePacket protocol into it; the caller closes it.
  const savePacketChunk = (p: VmbPacket, where: 'queued' | 'awaiting'): NtStatus => {
    const payload = where === 'queued' ? p.payload! : NO_PAYLOAD;
    const libLen = LIB_HEADER_SIZE + payload.length;
    w.begin(ChunkKind.packet, 8 + libLen);
    const body = w.skip(8 + libLen);
    w.u32(body, libLen);
    writeLib(w.bytes, body + 8, p.transId, p.wantCompletion, where, payload);
    ctx.libLen = libLen;
    const st = callSavePacket(ch, p, w, ctx);
    ctx.libLen = 0;
    if (st !== STATUS.SUCCESS) {
      w.discard();
      return st;
    }
    w.u32(body + 4, ctx.saveLen);
    packets++;
    return STATUS.SUCCESS;
  };
  const faults = ch.faults;
  let forgetQueued = false;
  const queue = ch.queue;
  // Room for the usual chunk per entry up front (header, LibBuf, a small SaveBuf), so the
  // stream is not regrown and recopied as it fills.
  w.reserve((queue.items.length - queue.head + ch.awaiting.size) * 128);
  for (let i = queue.head; i < queue.items.length; i++) {
    const q = queue.items[i]!;
    if (q.kind === 'packet' && faults.armed('forget-queued-at-save')) {
      faults.fire('forget-queued-at-save');
      forgetQueued = true;
    }
    if (q.kind === 'packet' && forgetQueued) continue;
    if (q.kind === 'completion') {
      w.chunk({ kind: ChunkKind.completion, transId: q.transId, payload: q.payload });
      completions++;
    } else {
      const st = savePacketChunk(q.packet, 'queued');
      if (st !== STATUS.SUCCESS) return st;
      w.end();
    }
  }
  for (const p of ch.awaiting.values()) {
    const st = savePacketChunk(p, 'awaiting');
    if (st !== STATUS.SUCCESS) return st;
    if (faults.armed('drop-saved-packet')) {
      faults.fire('drop-saved-packet');
      w.discard();
      packets--;
      continue;
    }
    if (faults.armed('corrupt-savebuf') && ctx.saveLen > 24) {
      faults.fire('corrupt-savebuf');
      const at = w.length - ctx.saveLen + 24;
      w.bytes[at] = w.bytes[at]! ^ 0xff;
    }
    w.end();
  }
  w.chunk({ kind: ChunkKind.end, chunksBefore: w.ends.length });
  w.rewrite(0, { kind: ChunkKind.header, packets, completions, nextTransId: ch.nextTransId });
  const bytes = w.bytes.subarray(0, w.length);
  // Packed: one unit holding every chunk, so RestoreFromBuffer then needs one large buffer.
  return { bytes, ends: ch.choices.saveChunking === 'packed' ? [w.length] : w.ends };
}

/**
 * The two-call EvtVmbChannelSavePacket protocol. The SaveBuf is the chunk's own bytes, so
 * the VSP writes its state in place; its length goes to ctx.saveLen. Returns SUCCESS or
 * the failure status.
 */
function callSavePacket(ch: Channel, p: VmbPacket, w: ChunkStreamWriter, ctx: SaveContext): NtStatus {
  const out = ctx.sizing;
  out.bytesNeeded = 0;
  ctx.saveLen = 0;
  const first = ch.savePacket!(ch, p, null, out);
  if (ntSuccess(first)) return STATUS.SUCCESS;
  const sizing = first === STATUS.BUFFER_TOO_SMALL || ch.choices.savePacketSizing === 'any-failure-with-size';
  if (!sizing || out.bytesNeeded <= 0) return first;
  const n = out.bytesNeeded;
  w.reserve(n);
  const at = w.skip(n);
  const second = ch.savePacket!(ch, p, w.bytes.subarray(at, at + n), out);
  if (!ntSuccess(second)) return second;
  ctx.saveLen = n;
  return STATUS.SUCCESS;
}

/**
 * VmbChannelRestoreFromBuffer: each buffer holds whole chunks, as one SaveContinue call
 * produced them. A damaged chunk or a failing RestorePacket callback takes back
 * everything this restore had added: nothing is left half-restored.
 */
export function channelRestoreFromBuffer(ch: Channel, buffer: Uint8Array): NtStatus {
  if (!ch.isServer || !ch.restorePacket || ch.state.conn !== 'disabled') return STATUS.INVALID_PARAMETER_1;
  let ctx = restoring.get(ch);
  if (!ctx) {
    ctx = { headerSeen: false, chunks: 0, nextTransId: 1, packets: [], completions: 0 };
    restoring.set(ch, ctx);
  }
  // Every chunk is checked before any is restored: a damaged one changes nothing.
  const cur = new ChunkCursor(buffer);
  try {
    while (cur.next());
  } catch (e) {
    if (!(e instanceof ChunkError)) throw e;
    rollback(ch, ctx);
    return STATUS.INVALID_PARAMETER_2;
  }
  // Room for every packet these chunks could bring back (a bound the buffer itself sets,
  // so a damaged header cannot ask for a huge table).
  ch.awaiting.reserve(ch.awaiting.size + cur.count);
  // And in the table of live packets, which each restored packet joins when its VSP
  // allocates it (regrowing it step by step was a hundredth of explore's walk).
  ch.livePackets.reserve(ch.livePackets.size + cur.count);
  cur.rewind();
  while (cur.next()) {
    // Invariant: chunks are restored in the order they were saved (version-2 chunks say
    // where they stand; a buffer fed out of order would reorder the library queue).
    if (cur.index !== undefined && cur.index !== ctx.chunks) {
      rollback(ch, ctx);
      return STATUS.INVALID_PARAMETER_2;
    }
    if (!ctx.headerSeen && cur.kind !== ChunkKind.header) {
      rollback(ch, ctx);
      return STATUS.INVALID_PARAMETER_2;
    }
    switch (cur.kind) {
      case ChunkKind.header:
        if (ctx.headerSeen) {
          rollback(ch, ctx);
          return STATUS.INVALID_PARAMETER_2;
        }
        ctx.headerSeen = true;
        ctx.nextTransId = cur.nextTransId;
        break;
      case ChunkKind.packet: {
        const times = ch.faults.armed('restore-twice') ? 2 : 1;
        if (times === 2) ch.faults.fire('restore-twice');
        for (let i = 0; i < times; i++) {
          const lib = lend(lentLib, buffer, cur.libAt, cur.libLen);
          const save = lend(lentSave, buffer, cur.saveAt, cur.saveLen);
          const st = ch.restorePacket(ch, lib, save);
          if (!ntSuccess(st)) {
            rollback(ch, ctx);
            return st;
          }
        }
        break;
      }
      case ChunkKind.completion:
        fifoPush(ch.queue, { kind: 'completion', transId: cur.transId, payload: buffer.slice(cur.payloadAt, cur.payloadAt + cur.payloadLen) });
        ctx.completions++;
        break;
      case ChunkKind.end:
        if (cur.chunksBefore !== ctx.chunks) {
          rollback(ch, ctx);
          return STATUS.INVALID_PARAMETER_2;
        }
        if (compareTx(ctx.nextTransId, ch.nextTransId) > 0) ch.nextTransId = ctx.nextTransId;
        restoring.delete(ch);
        return STATUS.SUCCESS;
    }
    ctx.chunks++;
  }
  return STATUS.MORE_PROCESSING_REQUIRED;
}

/**
 * The LibBuf and SaveBuf a RestorePacket callback is lent. They are KMCL's buffers,
 * passed for the call (SPEC-NOTES 6.3): a C VSP cannot keep the pointers past its return,
 * and ours copies what it keeps. So a short one is copied into a buffer of its length
 * kept for the purpose, which costs less than making a view of the chunk for each (two
 * per packet restored); a long one is lent as a view.
 */
const lentLib: Array<Uint8Array | undefined> = [];
const lentSave: Array<Uint8Array | undefined> = [];
const LEND_COPY_MAX = 128;

function lend(lent: Array<Uint8Array | undefined>, src: Uint8Array, at: number, len: number): Uint8Array {
  if (len > LEND_COPY_MAX) return src.subarray(at, at + len);
  let b = lent[len];
  if (b === undefined) lent[len] = b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = src[at + i]!;
  return b;
}

/** packetRestore's decoded LibBuf: read at once into the packet, so one serves every call. */
const restoredLib: LibPacketState = { transId: 0, wantCompletion: false, where: 'awaiting', payload: new Uint8Array(0) };

/** VmbPacketRestore: puts a fresh packet back into its saved state. Only during a restore. */
export function packetRestore(p: VmbPacket, libBuf: Uint8Array): NtStatus {
  const ch = p.channel;
  const ctx = restoring.get(ch);
  if (!ctx) return STATUS.INVALID_DEVICE_STATE;
  if (p.state !== 'idle') return STATUS.INVALID_PARAMETER_1;
  const lib = restoredLib;
  if (!decodeLibInto(libBuf, lib)) return STATUS.INVALID_PARAMETER_2;
  p.transId = lib.transId;
  p.wantCompletion = lib.wantCompletion;
  p.payload = lib.where === 'queued' ? lib.payload : null;
  if (lib.where === 'queued') {
    p.state = 'queued';
    // restore-twice on a packet still in the library queue: both copies are sent and the
    // second takes the first's place awaiting its completion, so the library loses the
    // first (as below); packet-leak must not blame that on the driver either.
    if (ch.faults.any) for (const q of ctx.packets) if (q.state === 'queued' && q.transId === p.transId) ch.livePackets.delete(q.id);
    fifoPush(ch.queue, { kind: 'packet', packet: p });
  } else {
    p.state = 'awaiting';
    // Only the restore-twice fault restores one transaction twice. The library then loses
    // the packet it replaces: its bug, which packet-leak must not blame on the driver.
    const replaced = ch.faults.any ? ch.awaiting.get(p.transId) : undefined;
    if (replaced !== undefined) ch.livePackets.delete(replaced.id);
    ch.awaiting.set(p.transId, p);
  }
  ctx.packets.push(p);
  return STATUS.SUCCESS;
}

function rollback(ch: Channel, ctx: RestoreContext): void {
  fifoClear(ch.queue);
  ch.awaiting.clear();
  for (const p of ctx.packets) p.state = 'idle';
  restoring.delete(ch);
}
