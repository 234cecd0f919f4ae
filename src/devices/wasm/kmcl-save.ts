// Save and restore through the KMCL shim (kmcl-shim.ts): VmbChannelSaveBegin /
// SaveContinue / SaveEnd, VmbChannelRestoreFromBuffer and VmbPacketRestore over the
// emulator's channel-save.ts, used as is, and the driver's SavePacket and RestorePacket
// callbacks. What SaveContinue hands out is kept per channel (the VM's saved state for
// `devices: c`), and two of the shim's injected faults act here.

import { channelRestoreFromBuffer, channelSaveBegin, channelSaveContinueView, channelSaveEnd, packetRestore } from '../../vmbus/channel-save.ts';
import type { VmbPacket } from '../../vmbus/packet.ts';
import { STATUS, type NtStatus } from '../../vmbus/status.ts';
import { PASSIVE_LEVEL } from './irql.ts';
import { SHIM_TAG, type ChannelRec, type KmclShim, type PacketRec } from './kmcl-shim.ts';
import type { ImportFn } from './runtime.ts';

/** The two-call EvtVmbChannelSavePacket protocol, into the driver: KMCL's buffer goes through a pool block whose guards catch a write past SaveBufSize. */
export function savePacket(shim: KmclShim, r: ChannelRec, p: VmbPacket, saveBuf: Uint8Array | null, out: { bytesNeeded: number }): NtStatus {
  const pool = shim.rt.pool;
  const needed = shim.bytesNeededWord();
  shim.rt.mem.setU32(needed, 0);
  const pr = (p.pointer as PacketRec | null) ?? null;
  const len = saveBuf?.length ?? 0;
  const buf = len > 0 ? pool.alloc(len, SHIM_TAG, 'shim') : 0;
  const st = shim.rt.callback(r.save, 'EvtVmbChannelSavePacket', PASSIVE_LEVEL, r.handle, pr?.handle ?? 0, buf, len, needed) >>> 0;
  out.bytesNeeded = shim.rt.mem.u32(needed);
  if (buf) {
    saveBuf!.set(shim.rt.mem.view(buf, len));
    pool.free(buf, SHIM_TAG, 'EvtVmbChannelSavePacket'); // its guards catch a write past SaveBufSize
  }
  // Its guards catch a write past the ULONG, as a block freed after each call would.
  pool.checkGuards(pool.live.get(needed)!, 'EvtVmbChannelSavePacket');
  return st;
}

/** EvtVmbChannelRestorePacket: KMCL lends LibBuf and SaveBuf for the call, copied into the driver's memory. */
export function restorePacket(shim: KmclShim, r: ChannelRec, lib: Uint8Array, save: Uint8Array): NtStatus {
  // The bench's refusal (KmclShim.restoreRefusals): the driver's callback is not called.
  // Looked up only when one is armed: the instance's lower-case text is a string made per
  // packet restored, at every save point of an explore.
  if (shim.restoreRefusals.size > 0) {
    const from = shim.restoreRefusals.get((r.ch.config.interfaceInstance ?? '').toLowerCase());
    if (from !== undefined && ++r.restorePacketCalls >= from) return STATUS.INVALID_PARAMETER;
  }
  const pool = shim.rt.pool;
  const libAt = pool.allocCopy(lib, SHIM_TAG);
  const saveAt = pool.allocCopy(save, SHIM_TAG);
  const st = shim.rt.callback(r.restore, 'EvtVmbChannelRestorePacket', PASSIVE_LEVEL, r.handle, libAt, lib.length, saveAt, save.length) >>> 0;
  pool.free(libAt, SHIM_TAG, 'EvtVmbChannelRestorePacket');
  pool.free(saveAt, SHIM_TAG, 'EvtVmbChannelRestorePacket');
  return st;
}

/** The save and restore entries of the server table. */
export function saveImports(shim: KmclShim): Record<string, ImportFn> {
  return {
    VmbPacketRestore: (h: number, buf: number, size: number) => {
      const pr = shim.packet(h, 'VmbPacketRestore');
      shim.serverOnly(pr.chan, 'VmbPacketRestore');
      // (fault second-packet-restore-fails: the restore fails after one packet came back)
      if (++shim.packetRestores === 2 && shim.opts.faults?.includes('second-packet-restore-fails')) return 0xc000009a;
      // A view, not a copy: packetRestore decodes the LibBuf at once and keeps a copy of
      // its payload only (save-chunks.ts decodeLibInto), and calls nothing that could grow
      // the driver's memory under the view.
      return packetRestore(pr.p, shim.rt.mem.view(buf, size));
    },
    VmbChannelSaveBegin: (h: number) => {
      const r = shim.chan(h, 'VmbChannelSaveBegin');
      shim.serverOnly(r, 'VmbChannelSaveBegin');
      if (shim.opts.faults?.includes('save-begin-fails')) return 0xc000009a; // STATUS_INSUFFICIENT_RESOURCES
      const st = channelSaveBegin(r.ch);
      if (st === STATUS.SUCCESS) r.saveOutputs = [];
      return st;
    },
    VmbChannelSaveContinue: (h: number, buf: number, size: number, filledAt: number, requiredAt: number) => {
      const r = shim.chan(h, 'VmbChannelSaveContinue');
      shim.serverOnly(r, 'VmbChannelSaveContinue');
      if (shim.opts.faults?.includes('save-continue-no-progress')) {
        shim.rt.mem.setU32(filledAt, 0);
        shim.rt.mem.setU32(requiredAt, 0);
        return STATUS.BUFFER_OVERFLOW;
      }
      // No view of the driver's buffer is held while the stream is built: the SavePacket
      // callbacks run inside and may grow the memory. The bytes are written once they are
      // known, and kept as they came (a view of the save's stream, which nothing writes
      // again), rather than through a buffer of the driver's size and two copies.
      const res = channelSaveContinueView(r.ch, size >>> 0);
      if (res.bytes !== null) {
        shim.rt.mem.write(buf, res.bytes);
        r.saveOutputs.push(res.bytes);
      }
      shim.rt.mem.setU32(filledAt, res.bytesFilled);
      shim.rt.mem.setU32(requiredAt, res.bytesRequired);
      return res.status;
    },
    VmbChannelSaveEnd: (h: number) => channelSaveEnd(shim.chan(h, 'VmbChannelSaveEnd').ch),
    VmbChannelRestoreFromBuffer: (h: number, buf: number, size: number) => {
      const r = shim.chan(h, 'VmbChannelRestoreFromBuffer');
      shim.serverOnly(r, 'VmbChannelRestoreFromBuffer');
      return channelRestoreFromBuffer(r.ch, shim.rt.mem.read(buf, size));
    },
  };
}
