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
import { ChunkError, ChunkKind, decodeChunks, decodeLib, encodeChunk, encodeLib, type Chunk } from './save-chunks.ts';
import { STATUS, ntSuccess, type NtStatus } from './status.ts';
import type { VmbPacket } from './packet.ts';
import { fifoClear, fifoItems, fifoPush } from './fifo.ts';

interface SaveContext {
  /** Encoded chunks, produced on the first SaveContinue. */
  chunks: Uint8Array[] | null;
  next: number;
  /** LibBuf length of the packet whose SavePacket callback is running (for traces). */
  libLen: number;
}

interface RestoreContext {
  headerSeen: boolean;
  chunks: number;
  nextTransId: number;
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
  if (st.conn !== 'open') return STATUS.INVALID_DEVICE_STATE;
  if (st.flow === 'active' && ch.choices.saveWhileActive === 'refuse') return STATUS.INVALID_DEVICE_STATE;
  saving.set(ch, { chunks: null, next: 0, libLen: 0 });
  return STATUS.SUCCESS;
}

/** VmbChannelSaveContinue: hands out whole chunks that fit in `buffer`. */
export function channelSaveContinue(ch: Channel, buffer: Uint8Array): SaveContinueResult {
  const ctx = saving.get(ch);
  if (!ctx) return { status: STATUS.INVALID_DEVICE_STATE, bytesFilled: 0, bytesRequired: 0 };
  if (ctx.chunks === null) {
    const built = buildChunks(ch, ctx);
    if (typeof built === 'number') return { status: built, bytesFilled: 0, bytesRequired: 0 };
    ctx.chunks = built;
  }
  let filled = 0;
  while (ctx.next < ctx.chunks.length) {
    const c = ctx.chunks[ctx.next]!;
    if (filled + c.length > buffer.length) break;
    buffer.set(c, filled);
    filled += c.length;
    ctx.next++;
  }
  if (ctx.next === ctx.chunks.length) return { status: STATUS.SUCCESS, bytesFilled: filled, bytesRequired: 0 };
  if (filled === 0) {
    return { status: STATUS.BUFFER_TOO_SMALL, bytesFilled: 0, bytesRequired: ctx.chunks[ctx.next]!.length };
  }
  return { status: STATUS.BUFFER_OVERFLOW, bytesFilled: filled, bytesRequired: 0 };
}

/** VmbChannelSaveEnd: frees the save context (also after a failed SaveContinue). */
export function channelSaveEnd(ch: Channel): void {
  saving.delete(ch);
}

/** LibBuf length of the packet being saved right now; 0 outside a SavePacket callback. */
export function currentSaveLibLength(ch: Channel): number {
  return saving.get(ch)?.libLen ?? 0;
}

function buildChunks(ch: Channel, ctx: SaveContext): Uint8Array[] | NtStatus {
  const records: Chunk[] = [];
  let packets = 0;
  let completions = 0;
  const savePacketRecord = (p: VmbPacket, where: 'queued' | 'awaiting'): NtStatus => {
    const lib = encodeLib({
      transId: p.transId,
      wantCompletion: p.wantCompletion,
      where,
      payload: where === 'queued' ? p.payload! : new Uint8Array(0),
    });
    ctx.libLen = lib.length;
    const save = callSavePacket(ch, p);
    ctx.libLen = 0;
    if (typeof save === 'number') return save;
    records.push({ kind: ChunkKind.packet, lib, save });
    packets++;
    return STATUS.SUCCESS;
  };
  const faults = ch.faults;
  let forgetQueued = false;
  for (const q of fifoItems(ch.queue)) {
    if (q.kind === 'packet' && faults.armed('forget-queued-at-save')) {
      faults.fire('forget-queued-at-save');
      forgetQueued = true;
    }
    if (q.kind === 'packet' && forgetQueued) continue;
    if (q.kind === 'completion') {
      records.push({ kind: ChunkKind.completion, transId: q.transId, payload: q.payload });
      completions++;
    } else {
      const st = savePacketRecord(q.packet, 'queued');
      if (st !== STATUS.SUCCESS) return st;
    }
  }
  const awaiting = [...ch.awaiting.values()].sort((a, b) => a.transId - b.transId);
  for (const p of awaiting) {
    const st = savePacketRecord(p, 'awaiting');
    if (st !== STATUS.SUCCESS) return st;
    if (faults.armed('drop-saved-packet')) {
      faults.fire('drop-saved-packet');
      records.pop();
      packets--;
    } else if (faults.armed('corrupt-savebuf')) {
      const last = records[records.length - 1];
      if (last?.kind === ChunkKind.packet && last.save.length > 24) {
        faults.fire('corrupt-savebuf');
        last.save[24] = last.save[24]! ^ 0xff;
      }
    }
  }
  const all: Chunk[] = [{ kind: ChunkKind.header, packets, completions, nextTransId: ch.nextTransId }, ...records];
  all.push({ kind: ChunkKind.end, chunksBefore: all.length });
  const encoded = all.map((c, i) => encodeChunk(c, i));
  if (ch.choices.saveChunking === 'packed') {
    // One chunk holding everything: RestoreFromBuffer then needs one large buffer.
    const total = encoded.reduce((n, c) => n + c.length, 0);
    const one = new Uint8Array(total);
    let at = 0;
    for (const c of encoded) {
      one.set(c, at);
      at += c.length;
    }
    return [one];
  }
  return encoded;
}

/** The two-call EvtVmbChannelSavePacket protocol. Returns the SaveBuf, or a failure status. */
function callSavePacket(ch: Channel, p: VmbPacket): Uint8Array | NtStatus {
  const out = { bytesNeeded: 0 };
  const first = ch.savePacket!(ch, p, null, out);
  if (ntSuccess(first)) return new Uint8Array(0);
  const sizing = first === STATUS.BUFFER_TOO_SMALL || ch.choices.savePacketSizing === 'any-failure-with-size';
  if (!sizing || out.bytesNeeded <= 0) return first;
  const buf = new Uint8Array(out.bytesNeeded);
  const second = ch.savePacket!(ch, p, buf, out);
  if (!ntSuccess(second)) return second;
  return buf;
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
  let chunks: Chunk[];
  try {
    chunks = decodeChunks(buffer);
  } catch (e) {
    if (!(e instanceof ChunkError)) throw e;
    rollback(ch, ctx);
    return STATUS.INVALID_PARAMETER_2;
  }
  for (const c of chunks) {
    // Invariant: chunks are restored in the order they were saved (version-2 chunks say
    // where they stand; a buffer fed out of order would reorder the library queue).
    if (c.index !== undefined && c.index !== ctx.chunks) {
      rollback(ch, ctx);
      return STATUS.INVALID_PARAMETER_2;
    }
    if (!ctx.headerSeen && c.kind !== ChunkKind.header) {
      rollback(ch, ctx);
      return STATUS.INVALID_PARAMETER_2;
    }
    switch (c.kind) {
      case ChunkKind.header:
        if (ctx.headerSeen) {
          rollback(ch, ctx);
          return STATUS.INVALID_PARAMETER_2;
        }
        ctx.headerSeen = true;
        ctx.nextTransId = c.nextTransId;
        break;
      case ChunkKind.packet: {
        const times = ch.faults.armed('restore-twice') ? 2 : 1;
        if (times === 2) ch.faults.fire('restore-twice');
        for (let i = 0; i < times; i++) {
          const st = ch.restorePacket(ch, c.lib, c.save);
          if (!ntSuccess(st)) {
            rollback(ch, ctx);
            return st;
          }
        }
        break;
      }
      case ChunkKind.completion:
        fifoPush(ch.queue, { kind: 'completion', transId: c.transId, payload: c.payload });
        ctx.completions++;
        break;
      case ChunkKind.end:
        if (c.chunksBefore !== ctx.chunks) {
          rollback(ch, ctx);
          return STATUS.INVALID_PARAMETER_2;
        }
        ch.nextTransId = Math.max(ch.nextTransId, ctx.nextTransId);
        restoring.delete(ch);
        return STATUS.SUCCESS;
    }
    ctx.chunks++;
  }
  return STATUS.MORE_PROCESSING_REQUIRED;
}

/** VmbPacketRestore: puts a fresh packet back into its saved state. Only during a restore. */
export function packetRestore(p: VmbPacket, libBuf: Uint8Array): NtStatus {
  const ch = p.channel;
  const ctx = restoring.get(ch);
  if (!ctx) return STATUS.INVALID_DEVICE_STATE;
  if (p.state !== 'idle') return STATUS.INVALID_PARAMETER_1;
  const lib = decodeLib(libBuf);
  if (!lib) return STATUS.INVALID_PARAMETER_2;
  p.transId = lib.transId;
  p.wantCompletion = lib.wantCompletion;
  p.payload = lib.where === 'queued' ? lib.payload : null;
  if (lib.where === 'queued') {
    p.state = 'queued';
    fifoPush(ch.queue, { kind: 'packet', packet: p });
  } else {
    p.state = 'awaiting';
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
