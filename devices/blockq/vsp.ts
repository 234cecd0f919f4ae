// The blockq VSP's TypeScript twin: the host side of PROTOCOL.md on the emulator's KMCL
// server channel (src/vmbus/channel.ts). Unlike the sample VSP it answers no request
// inline: every request joins the channel's outstanding set and is answered when its
// delay is over (protocol.ts answerDelay), so several are outstanding at once and the
// replies, of varying size, go out in another order than the requests came.

import { txAdd, type TxId } from '../../src/vmbus/tx-id.ts';
import type { Channel } from '../../src/vmbus/channel.ts';
import { currentSaveLibLength, packetRestore } from '../../src/vmbus/channel-save.ts';
import { FORMAT_FLAG_WAIT_FOR_COMPLETION, type IncomingPacket, type VmbPacket } from '../../src/vmbus/packet.ts';
import { STATUS, type NtStatus } from '../../src/vmbus/status.ts';
import { fifo, fifoInsertSorted, fifoItems, fifoPeek, fifoShift, type Fifo } from '../../src/vmbus/fifo.ts';
import { u64FromHalves } from '../../src/vmbus/le-bytes.ts';
import { hexOfHalves, type DigestHalves } from '../../src/devices/digest.ts';
import { DeviceError, type DeliveryPeek, type HostVsp, type HostVspOptions } from '../../src/device-api/device-module.ts';
import {
  checkCall, createServerChannel, enableServerChannel, restoreServerChannel, saveServerChannel, type ServerVspCallbacks,
} from '../../src/device-api/server-channel.ts';
import {
  HEADER_SIZE, INTERFACE_TYPE_GUID, MAX_MESSAGE_SIZE, Mode, MsgType, Status,
  answerDelay, decodeHeader, digestOf, encodeMessage, encodeReply, isIntact, replyLength, replyStatus, statusFor, statusHex,
} from './protocol.ts';
import { readRecord, recordSize, writeRecord, type EventState } from './save-record.ts';

interface Outstanding {
  pkt: IncomingPacket;
  tx: TxId;
  due: number;
  buf: Uint8Array;
}

const byDue = (r: Outstanding): number => r.due;

export class BlockqVsp implements HostVsp, ServerVspCallbacks {
  readonly channel: Channel;
  private readonly o: HostVspOptions;
  /**
   * requests not yet answered, soonest due first.
   * Invariant: a request is here from its delivery until it is answered, once (completeDue,
   * completeHeld or the Suspend before a save); test/devices/blockq/properties.test.ts.
   */
  private outstanding: Fifo<Outstanding> = fifo();
  private discarding = false;
  /** rescinded, or closed by its guest: what KMCL cancels now ends here, traced as pkt.cancel */
  private retiring = false;
  /** Events this VSP restored during the current restore (freed if it fails) */
  private restoring: VmbPacket[] = [];
  /** Events left from a restore that failed: KMCL took them back; the rescind that follows ends them */
  private failedRestore: VmbPacket[] = [];
  private readonly routine = (p: VmbPacket, st: NtStatus, resp: Uint8Array | null): void => this.onReply(p, st, resp);
  private readonly d: DigestHalves = { hi: 0, lo: 0 };

  /** the error a failed KMCL call of this channel throws */
  private readonly fail = (message: string): DeviceError => new DeviceError(`blockq VSP channel ${this.o.ch}: ${message}`);

  constructor(o: HostVspOptions) {
    this.o = o;
    this.channel = createServerChannel({ ...o, interfaceType: INTERFACE_TYPE_GUID, maxPacketSize: MAX_MESSAGE_SIZE, fail: this.fail }, this);
  }

  /** (ServerVspCallbacks) */
  state(state: string): void {
    if (!this.discarding) this.o.sink.emit({ side: 'host', ev: 'ch.state', ch: this.o.ch, state });
  }

  enable(): void {
    enableServerChannel(this.channel, this, this.fail);
  }

  // ------------------------------------------------------------ guest requests

  /** (ServerVspCallbacks) */
  onPacket(pkt: IncomingPacket, buf: Uint8Array): void {
    const ch = this.o.ch;
    const h = decodeHeader(buf);
    if (pkt.deferrals === 0) {
      const len = h ? Math.min(h.length, buf.length) : buf.length;
      digestOf(this.d, buf, len);
      this.o.sink.emit({ side: 'host', ev: 'pkt.recv', ch, tx: h?.tx ?? 0, dir: 'g2h', len, digest: hexOfHalves(this.d.hi, this.d.lo) });
    }
    if (!h || (h.type !== MsgType.Request && h.type !== MsgType.Note)) {
      this.o.sink.emit({ side: 'host', ev: 'pkt.fail', ch, tx: h?.tx ?? 0, dir: 'g2h', status: statusHex(Status.DeviceDataError) });
      this.channel.packetFail(pkt);
      return;
    }
    if (h.type === MsgType.Note) {
      this.channel.packetComplete(pkt, null);
      return;
    }
    if (h.mode === Mode.deferred) {
      // Deferred to passive level once; answered at once when it comes back there.
      if (pkt.deferrals === 0) this.channel.packetDeferToPassive(pkt);
      else this.answer({ pkt, tx: h.tx, due: 0, buf });
      return;
    }
    // Every request waits its turn: answered when its delay is over, not in arrival order.
    const hold = h.mode === Mode.hold ? h.hold : 0;
    fifoInsertSorted(this.outstanding, { pkt, tx: h.tx, due: this.o.now() + answerDelay(h.tx, hold), buf }, byDue);
  }

  private answer(r: Outstanding): void {
    const h = decodeHeader(r.buf)!;
    const status = statusFor(h.tx, isIntact(r.buf, h));
    const reply = encodeReply(h, status, digestOf(this.d, r.buf, Math.min(h.length, r.buf.length)));
    digestOf(this.d, reply);
    this.o.sink.emit({
      side: 'host', ev: 'pkt.complete', ch: this.o.ch, tx: h.tx, dir: 'g2h', status: statusHex(status), len: reply.length, digest: hexOfHalves(this.d.hi, this.d.lo),
    });
    this.channel.packetComplete(r.pkt, reply);
  }

  nextDue(): number | null {
    return fifoPeek(this.outstanding)?.due ?? null;
  }

  completeDue(now: number): boolean {
    const head = fifoPeek(this.outstanding);
    if (!head || head.due > now) return false;
    fifoShift(this.outstanding);
    this.answer(head);
    return true;
  }

  private indexOf(tx: TxId): number {
    const items = this.outstanding.items;
    for (let k = this.outstanding.head; k < items.length; k++) if (items[k]!.tx === tx) return k;
    return -1;
  }

  isHeld(tx: TxId): boolean {
    return this.indexOf(tx) >= 0;
  }

  completeHeld(tx: TxId): boolean {
    const i = this.indexOf(tx);
    if (i < 0) return false;
    const [r] = this.outstanding.items.splice(i, 1);
    this.answer(r!);
    return true;
  }

  peekDelivery(): DeliveryPeek | null {
    const ch = this.channel;
    const redo = ch.deferred[0];
    if (redo) return { ev: 'pkt.complete', tx: decodeHeader(redo.payload)?.tx ?? 0, dir: 'g2h' };
    const inc = ch.incoming;
    const v = inc?.peek();
    if (!inc || !v) return null;
    const tx = v.payloadLen < 16 ? 0 : u64FromHalves(inc.mem.u32(v.payloadAt + 8), inc.mem.u32(v.payloadAt + 12));
    if (v.type === 0xb) {
      const p = ch.awaiting.get(v.transId);
      return { ev: 'pkt.completion', tx: p ? (p.pointer as EventState).tx : tx, dir: 'h2g' };
    }
    return { ev: 'pkt.recv', tx, dir: 'g2h' };
  }

  /** (ServerVspCallbacks, after Paused) */
  onSuspend(): void {
    // KMCL waits until every incoming packet is completed: answer the outstanding ones now.
    const left = fifoItems(this.outstanding);
    this.outstanding = fifo();
    if (this.discarding) for (const r of left) this.channel.packetComplete(r.pkt, null);
    else for (const r of left) this.answer(r);
  }

  // ------------------------------------------------------------ host events

  send(kind: 'transaction' | 'notify', firstTx: TxId, count: number, size: number, guestHold: number): void {
    const wait = kind === 'transaction';
    for (let i = 0; i < count; i++) {
      const tx = txAdd(firstTx, i);
      const type = wait ? MsgType.Event : MsgType.Note;
      const msg = encodeMessage(type, tx, size, 0, wait ? guestHold : 0);
      digestOf(this.d, msg);
      const p = this.channel.packetAllocate();
      const st: EventState = { tx, type, length: size, hold: guestHold, digestHi: this.d.hi, digestLo: this.d.lo };
      p.pointer = st;
      p.completionRoutine = this.routine;
      this.o.sink.emit({ side: 'host', ev: 'pkt.send', ch: this.o.ch, tx, dir: 'h2g', len: size, digest: hexOfHalves(this.d.hi, this.d.lo), wantCompletion: wait });
      checkCall('VmbPacketSend', this.channel.packetSend(p, msg, wait ? FORMAT_FLAG_WAIT_FOR_COMPLETION : 0), this.fail);
      if (p.state === 'queued') this.o.sink.emit({ side: 'host', ev: 'pkt.queued', ch: this.o.ch, tx, dir: 'h2g' });
    }
  }

  private onReply(p: VmbPacket, status: NtStatus, resp: Uint8Array | null): void {
    const st = p.pointer as EventState;
    // A cancelled Event did not complete: at a teardown nothing is traced; at a rescind
    // or after the guest's close it ends here, and the trace says so (pkt.cancel).
    if (st.type === MsgType.Event && status === STATUS.SUCCESS && resp !== null) {
      digestOf(this.d, resp, replyLength(resp));
      this.o.sink.emit({
        side: 'host', ev: 'pkt.completion', ch: this.o.ch, tx: st.tx, dir: 'h2g', status: statusHex(replyStatus(resp)), digest: hexOfHalves(this.d.hi, this.d.lo),
      });
    } else if (st.type === MsgType.Event && this.retiring) {
      this.traceCancel(st.tx, status);
    }
    this.channel.packetFree(p);
  }

  // ------------------------------------------------------------ save / restore

  /** (ServerVspCallbacks) */
  onSavePacket(p: VmbPacket, buf: Uint8Array | null, out: { bytesNeeded: number }): NtStatus {
    const st = p.pointer as EventState;
    const n = recordSize(st.tx);
    if (buf === null || buf.length < n) {
      out.bytesNeeded = n;
      return STATUS.BUFFER_TOO_SMALL;
    }
    writeRecord(buf, st);
    digestOf(this.d, buf, n);
    this.o.sink.emit({
      side: 'host', ev: 'pkt.save', ch: this.o.ch, tx: st.tx, dir: 'h2g', libLen: currentSaveLibLength(this.channel), saveLen: n, saveDigest: hexOfHalves(this.d.hi, this.d.lo),
    });
    return STATUS.SUCCESS;
  }

  /** (ServerVspCallbacks) */
  onRestorePacket(lib: Uint8Array, save: Uint8Array): NtStatus {
    const st = readRecord(save, MsgType.Event);
    if (!st) return STATUS.INVALID_PARAMETER;
    st.type = this.restoredType(st);
    const p = this.channel.packetAllocate();
    const r = packetRestore(p, lib);
    if (r !== STATUS.SUCCESS) {
      // Not restored: the packet is still this VSP's, to free (a leak otherwise, which
      // VmbChannelCleanup names).
      this.channel.packetFree(p);
      return r;
    }
    this.restoring.push(p);
    p.pointer = st;
    p.completionRoutine = this.routine;
    digestOf(this.d, save);
    this.o.sink.emit({ side: 'host', ev: 'pkt.restore', ch: this.o.ch, tx: st.tx, dir: 'h2g', saveDigest: hexOfHalves(this.d.hi, this.d.lo) });
    return STATUS.SUCCESS;
  }

  /**
   * A record does not say Event or Note (PROTOCOL.md "SaveBuf"): a Note saved while it
   * waited in KMCL is known by the digest of the message as sent, so that a rescind or
   * the guest's close does not end it as a cancelled Event.
   */
  private restoredType(st: EventState): number {
    if (st.hold !== 0 || st.length < HEADER_SIZE || st.length > MAX_MESSAGE_SIZE) return MsgType.Event;
    digestOf(this.d, encodeMessage(MsgType.Note, st.tx, st.length, 0, 0));
    return this.d.hi === st.digestHi && this.d.lo === st.digestLo ? MsgType.Note : MsgType.Event;
  }

  save(): Uint8Array[] {
    return saveServerChannel(this.channel, this.o.saveBufferSize, this.fail);
  }

  /** A checkpoint of a running VM (save-and-continue): the same channel starts again. */
  resume(): void {
    this.channel.start();
  }

  restore(buffers: readonly Uint8Array[]): void {
    this.restoring = [];
    try {
      restoreServerChannel(this.channel, buffers, this.fail);
    } catch (e) {
      // KMCL took back what the failed restore had added: the packets are still ours to
      // free, which the rescind that follows does (the executor falls back to one).
      this.failedRestore = e instanceof DeviceError ? this.restoring : [];
      throw e;
    } finally {
      this.restoring = [];
    }
  }

  // ------------------------------------------------------------ rescind and guest close

  private traceCancel(tx: TxId, status: NtStatus): void {
    this.o.sink.emit({ side: 'host', ev: 'pkt.cancel', ch: this.o.ch, tx, dir: 'h2g', status: statusHex(status) });
  }

  /**
   * The host rescinds this channel instance (PROTOCOL.md "Rescind and guest close"),
   * after the bench's `ch.rescind`: VmbChannelDisable suspends it (Suspend answers the
   * Requests still outstanding, which the guest never reads) and cancels every Event
   * still queued or awaiting its reply, each ending at its completion routine as
   * pkt.cancel; the Events of a failed restore, which no object holds any more, end here
   * the same way. Then VmbChannelCleanup: this object is done, the re-offer is a new one.
   */
  rescind(): void {
    this.retiring = true;
    try {
      this.channel.disable();
      // No KMCL object cancels these: the VSP ends them, STATUS_CANCELLED (PROTOCOL.md), as the C VSP does.
      for (const p of this.failedRestore) {
        if (p.state === 'freed') continue;
        const st = p.pointer as EventState | null;
        if (st && st.type === MsgType.Event) this.traceCancel(st.tx, STATUS.CANCELLED);
        this.channel.packetFree(p);
      }
      this.failedRestore = [];
      this.channel.cleanup();
    } finally {
      this.retiring = false;
    }
  }

  /**
   * The guest closed this channel (PROTOCOL.md "Rescind and guest close"): KMCL suspends
   * it (onSuspend answers every outstanding Request; deferred ones are delivered first)
   * and runs Closed. The guest then ends its own Requests; `retireClosed` follows.
   */
  guestClosed(): void {
    this.channel.peerClosed();
  }

  /**
   * After the guest's close, the VSP retires what it had outstanding: each Event queued
   * or awaiting its reply ends at its completion routine with the cancel status
   * (pkt.cancel); queued Notes go. The channel object stays, closed and offered, for the
   * guest to open again.
   */
  retireClosed(): void {
    this.retiring = true;
    try {
      this.channel.retireOutstanding();
    } finally {
      this.retiring = false;
    }
  }

  teardown(opts: { discard: boolean }): void {
    this.discarding = opts.discard;
    this.channel.disable();
    this.channel.cleanup();
  }
}

