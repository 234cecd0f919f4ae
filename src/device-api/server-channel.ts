// A host VSP twin's KMCL server channel, set up, saved and restored the way every VSP
// does it, whatever its protocol: the Init calls before VmbChannelEnable, the state
// changes written to the trace, and the SaveBegin / SaveContinue* / SaveEnd and
// RestoreFromBuffer loops with their partial-progress codes. A device's VSP twin gives
// what its protocol decides (each packet, each saved record, what Suspend completes) and
// keeps the Channel it gets back; its KMCL calls stay its own. Each helper checks every
// status a call returns and turns a failure into the device's own error, named by call.

import { Channel, stateChangeCallbacksInit } from '../vmbus/channel.ts';
import { channelRestoreFromBuffer, channelSaveBegin, channelSaveContinue, channelSaveEnd } from '../vmbus/channel-save.ts';
import type { IncomingPacket, VmbPacket } from '../vmbus/packet.ts';
import { STATUS, statusName, type NtStatus } from '../vmbus/status.ts';
import type { HostVspOptions } from './device-module.ts';

/** What a VSP twin's protocol does at each of the server channel's callbacks. */
export interface ServerVspCallbacks {
  /**
   * A state change to trace as `ch.state` (Opened, Started, Active, Paused, Closed; and
   * Enabled from enableServerChannel). The VSP decides whether: the objects of a VM being
   * discarded go untraced.
   */
  state(state: string): void;
  /** EvtVmbChannelProcessPacket: a packet from the guest */
  onPacket(pkt: IncomingPacket, buf: Uint8Array): void;
  /** EvtChannelSuspend, after `state('Paused')`: KMCL waits until every incoming packet is completed */
  onSuspend(): void;
  /** EvtVmbPacketSave: the VSP's record of a packet in flight (BUFFER_TOO_SMALL with bytesNeeded to ask for room) */
  onSavePacket(p: VmbPacket, buf: Uint8Array | null, out: { bytesNeeded: number }): NtStatus;
  /** EvtVmbPacketRestore: a packet back from the library's and the VSP's saved records */
  onRestorePacket(lib: Uint8Array, save: Uint8Array): NtStatus;
}

/** The VSP's side of the set-up: the options the emulator gave it, and what only the device knows. */
export interface ServerChannelOptions extends Omit<HostVspOptions, 'now' | 'saveBufferSize' | 'faults'> {
  /** platform bugs to imitate; absent: none (a twin built outside the emulator) */
  faults?: HostVspOptions['faults'] | undefined;
  /** the device's interface type GUID (VmbServerChannelInitSetTargetInterfaceId) */
  interfaceType: string;
  /** the largest packet the guest may send (VmbChannelInitSetMaximumPacketSize) */
  maxPacketSize: number;
  /** the error a failed call throws, from its message (`X failed with STATUS_...`): the device names itself */
  fail: (message: string) => Error;
}

/** Throws the device's error when a KMCL call did not succeed. */
export function checkCall(call: string, status: NtStatus, fail: (message: string) => Error): void {
  if (status !== STATUS.SUCCESS) throw fail(`${call} failed with ${statusName(status)}`);
}

/**
 * Allocates the server channel of one VM's channel and makes every Init call a VSP makes
 * before VmbChannelEnable: the target interface, the maximum packet size, the state
 * change, process packet and save/restore callbacks, and the transaction quota if any.
 * KMCL's misuse reports and the packets the ring steps over go to the trace (host side).
 */
export function createServerChannel(o: ServerChannelOptions, vsp: ServerVspCallbacks): Channel {
  const ch = new Channel(true, o.ch, o.choices);
  if (o.faults) ch.faults = o.faults;
  if (o.firstTransId !== undefined) ch.nextTransId = o.firstTransId;
  const sink = o.sink;
  ch.onMisuse = (v) => sink.emit({ side: 'host', ev: 'kmcl.violation', ch: o.ch, rule: v.rule, call: v.call, packet: v.packet, message: v.message });
  ch.onUnacceptable = (offset, type, flags) => sink.emit({ side: 'host', ev: 'ring.format', ch: o.ch, dir: 'g2h', offset, type, flags });
  const cbs = stateChangeCallbacksInit();
  cbs.opened = () => {
    vsp.state('Opened');
    return STATUS.SUCCESS;
  };
  cbs.started = () => vsp.state('Started');
  cbs.postStarted = () => vsp.state('Active');
  cbs.suspend = () => {
    vsp.state('Paused');
    vsp.onSuspend();
  };
  cbs.closed = () => vsp.state('Closed');
  checkCall('VmbServerChannelInitSetTargetInterfaceId', ch.serverInitSetTargetInterfaceId(o.interfaceType, o.instance), o.fail);
  checkCall('VmbChannelInitSetMaximumPacketSize', ch.initSetMaximumPacketSize(o.maxPacketSize), o.fail);
  checkCall('VmbChannelInitSetStateChangeCallbacks', ch.initSetStateChangeCallbacks(cbs), o.fail);
  checkCall('VmbChannelInitSetProcessPacketCallbacks', ch.initSetProcessPacketCallbacks((_c, p, b) => vsp.onPacket(p, b)), o.fail);
  checkCall(
    'VmbServerChannelInitSetSaveRestorePacketCallbacks',
    ch.serverInitSetSaveRestorePacketCallbacks((_c, p, buf, out) => vsp.onSavePacket(p, buf, out), (_c, lib, save) => vsp.onRestorePacket(lib, save)),
    o.fail,
  );
  if (o.quota) ch.setTransactionQuota(o.quota);
  return ch;
}

/** VmbChannelEnable (traced `Enabled`: the channel is offered), then VmbChannelStart. */
export function enableServerChannel(ch: Channel, vsp: Pick<ServerVspCallbacks, 'state'>, fail: (message: string) => Error): void {
  checkCall('VmbChannelEnable', ch.enable(), fail);
  vsp.state('Enabled');
  ch.start();
}

// The SaveContinue buffer is only lent to each call (what it filled is copied out), so
// every save reuses one: a fresh 1 MiB buffer per save cost more in page faults than the save.
let scratch = new Uint8Array(0);
function saveScratch(size: number): Uint8Array {
  if (scratch.length < size) scratch = new Uint8Array(size);
  return scratch.subarray(0, size);
}

/**
 * Pause, then SaveBegin / SaveContinue* / SaveEnd, `bufferSize` bytes a call: the filled
 * buffers, in order. BUFFER_OVERFLOW (a full buffer, more to come) and BUFFER_TOO_SMALL
 * (one packet's records need `bytesRequired`) are partial progress, not failures;
 * anything else but SUCCESS is. SaveEnd runs whatever happened.
 */
export function saveServerChannel(ch: Channel, bufferSize: number, fail: (message: string) => Error): Uint8Array[] {
  ch.pause();
  checkCall('VmbChannelSaveBegin', channelSaveBegin(ch), fail);
  const out: Uint8Array[] = [];
  let buf = saveScratch(bufferSize);
  try {
    for (;;) {
      const r = channelSaveContinue(ch, buf);
      if (r.status === STATUS.BUFFER_OVERFLOW) {
        out.push(buf.slice(0, r.bytesFilled));
        continue;
      }
      if (r.status === STATUS.BUFFER_TOO_SMALL) {
        buf = saveScratch(r.bytesRequired);
        continue;
      }
      checkCall('VmbChannelSaveContinue', r.status, fail);
      if (r.bytesFilled > 0) out.push(buf.slice(0, r.bytesFilled));
      return out;
    }
  } finally {
    channelSaveEnd(ch);
  }
}

/**
 * RestoreFromBuffer with each saved buffer, in order, before the channel is enabled:
 * MORE_PROCESSING_REQUIRED on every buffer but the last, SUCCESS on the last. Anything
 * else (or no buffer at all) throws the device's error; KMCL has then taken back what the
 * failed restore added (channel-save.ts), and the packets the VSP restored are its to free.
 */
export function restoreServerChannel(ch: Channel, buffers: readonly Uint8Array[], fail: (message: string) => Error): void {
  for (let i = 0; i < buffers.length; i++) {
    const st = channelRestoreFromBuffer(ch, buffers[i]!);
    const last = i === buffers.length - 1;
    if (st === STATUS.MORE_PROCESSING_REQUIRED && !last) continue;
    if (st === STATUS.SUCCESS && last) return;
    throw fail(`VmbChannelRestoreFromBuffer returned ${statusName(st)} for buffer ${i + 1} of ${buffers.length}`);
  }
  throw fail('no saved buffers to restore from');
}
