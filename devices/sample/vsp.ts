// The sample VSP's TypeScript twin: the host side of lab/drivers/PROTOCOL.md, written
// against the emulator's KMCL server channel exactly as the C VSP is written against
// vmbkmcl.sys. It writes the host side of the trace.

import { txAdd, type TxId } from '../../src/vmbus/tx-id.ts';
import type { Channel } from '../../src/vmbus/channel.ts';
import { currentSaveLibLength, packetRestore } from '../../src/vmbus/channel-save.ts';
import { FORMAT_FLAG_WAIT_FOR_COMPLETION, type IncomingPacket, type VmbPacket } from '../../src/vmbus/packet.ts';
import { STATUS, type NtStatus } from '../../src/vmbus/status.ts';
import { DeviceError, type HostVsp, type HostVspOptions } from '../../src/device-api/device-module.ts';
import {
  checkCall, createServerChannel, enableServerChannel, restoreServerChannel, saveServerChannel, type ServerVspCallbacks,
} from '../../src/device-api/server-channel.ts';
import type { StateKey } from '../../src/scenario/state-key.ts';
import { keyHostTx } from './guest-keys.ts';
import { digestHex, fnv1a64Into, hexOfHalves, type DigestHalves } from '../../src/devices/digest.ts';
import {
  CompletionMode,
  INTERFACE_TYPE_GUID,
  MAX_MESSAGE_SIZE,
  MsgType,
  Status,
  decodeHeader,
  decodeHeaderInto,
  encodeCompletion,
  encodeMessage,
  isIntact,
  newHeader,
  statusFor,
  statusHex,
} from './protocol.ts';
import { fifo, fifoInsertSorted, fifoItems, fifoPeek, fifoShift, type Fifo } from '../../src/vmbus/fifo.ts';
import { peekTx } from './peek.ts';
import { SAVEBUF_SIZE, readSaveRecord, writeSaveRecord, type SavedHostTx } from './save-record.ts';

const byDue = (r: HeldRequest): number => r.due;

// Scratch headers (nothing allocated per packet): one for the packet being received and
// completed, one for a completion arriving. Each is read and used before the next decode.
const recvHeader = newHeader();
const completionHeader = newHeader();

export class VspError extends DeviceError {
  constructor(ch: number, message: string) {
    super(`VSP channel ${ch}: ${message}`);
    this.name = 'VspError';
  }
}

/**
 * What the VSP keeps per host transaction (its packet's pointer): the SaveBuf record's
 * contents, the digest as numbers (the hex is made only for the pkt.send event).
 */
type HostTx = SavedHostTx;

interface HeldRequest {
  pkt: IncomingPacket;
  due: number;
  tx: TxId;
  buf: Uint8Array;
}

/** The emulator's options (HostVspOptions); `faults` may be left out by a VSP built outside it. */
export type VspOptions = Omit<HostVspOptions, 'faults'> & { faults?: HostVspOptions['faults'] | undefined };

export class SampleVsp implements HostVsp, ServerVspCallbacks {
  readonly channel: Channel;
  private readonly opts: VspOptions;
  /** requests held in mode Hold, soonest due first */
  private held: Fifo<HeldRequest> = fifo();
  /** tearing down with a VM being discarded: nothing completed now is traced */
  private discarding = false;
  /** the host is rescinding this channel: what KMCL cancels now is traced as pkt.cancel */
  private rescinding = false;
  /** packets this VSP restored during the current restore (freed if it fails) */
  private restoring: VmbPacket[] = [];
  /** packets left from a restore that failed: KMCL took them back; the rescind ends them */
  private failedRestore: VmbPacket[] = [];
  /** every host transaction's completion routine (one closure, not one per packet) */
  private readonly completionRoutine = (p: VmbPacket, st: NtStatus, resp: Uint8Array | null): void => this.onCompletion(p, st, resp);
  /** scratch for the digest of a message being sent */
  private readonly sendDigest: DigestHalves = { hi: 0, lo: 0 };
  /** scratch for the digest of the packet being received (no allocation per packet) */
  private readonly recvDigest: DigestHalves = { hi: 0, lo: 0 };

  /** the error a failed KMCL call of this channel throws */
  private readonly fail = (message: string): VspError => new VspError(this.opts.ch, message);

  constructor(opts: VspOptions) {
    this.opts = opts;
    this.channel = createServerChannel({ ...opts, interfaceType: INTERFACE_TYPE_GUID, maxPacketSize: MAX_MESSAGE_SIZE, fail: this.fail }, this);
  }

  /** (ServerVspCallbacks) */
  state(state: string): void {
    // The objects of a VM being discarded go with it, untraced (their completions too).
    if (this.discarding) return;
    this.opts.sink.emit({ side: 'host', ev: 'ch.state', ch: this.opts.ch, state });
  }

  enable(): void {
    enableServerChannel(this.channel, this, this.fail);
  }

  // ------------------------------------------------------------ guest requests

  /** (ServerVspCallbacks) */
  onPacket(pkt: IncomingPacket, buf: Uint8Array): void {
    const ch = this.opts.ch;
    const h = decodeHeaderInto(recvHeader, buf);
    // The digest of what arrived: pkt.recv carries it, and an inline completion's
    // payload quotes it (computed once for both).
    const recvDigest = this.recvDigest;
    let digested = false;
    if (pkt.deferrals === 0) {
      const len = h ? Math.min(h.length, buf.length) : buf.length;
      fnv1a64Into(recvDigest, buf, 0, len);
      digested = true;
      this.opts.sink.emit({
        side: 'host', ev: 'pkt.recv', ch, tx: h?.tx ?? 0, dir: 'g2h', len, digest: hexOfHalves(recvDigest.hi, recvDigest.lo),
      });
    }
    if (!h || (h.type !== MsgType.Request && h.type !== MsgType.Notify)) {
      // Not a message a guest may send: a protocol error, so the queue stops.
      this.opts.sink.emit({ side: 'host', ev: 'pkt.fail', ch, tx: h?.tx ?? 0, dir: 'g2h', status: statusHex(Status.DataError) });
      this.channel.packetFail(pkt);
      return;
    }
    if (h.type === MsgType.Notify) {
      this.channel.packetComplete(pkt, null);
      return;
    }
    switch (h.arg0) {
      case CompletionMode.Deferred:
        if (pkt.deferrals === 0) {
          this.channel.packetDeferToPassive(pkt);
          return;
        }
        this.completeRequest(pkt, buf);
        return;
      case CompletionMode.Hold:
        fifoInsertSorted(this.held, { pkt, due: this.opts.now() + h.arg1, tx: h.tx, buf }, byDue);
        return;
      default:
        this.completeRequest(pkt, buf, h, digested ? recvDigest : undefined);
    }
  }

  /** `h` and `digest`: the request's header and digest when the caller has them already. */
  private completeRequest(pkt: IncomingPacket, buf: Uint8Array, h = decodeHeaderInto(recvHeader, buf)!, digest?: DigestHalves): void {
    const status = statusFor(h.tx, isIntact(buf, h));
    const response = encodeCompletion(buf, h, status, digest);
    this.opts.sink.emit({
      side: 'host', ev: 'pkt.complete', ch: this.opts.ch, tx: h.tx, dir: 'g2h',
      status: statusHex(status), len: response.length, digest: digestHex(response),
    });
    this.channel.packetComplete(pkt, response);
  }

  /** Explore's state key: a host transaction's context, field by field (guest-keys.ts). */
  keyContext(k: StateKey, pointer: unknown): void {
    keyHostTx(k, pointer);
  }

  /** When the next held request is due, or null when none is held. */
  nextDue(): number | null {
    return fifoPeek(this.held)?.due ?? null;
  }

  /** Completes the earliest held request if it is due. */
  completeDue(now: number): boolean {
    const head = fifoPeek(this.held);
    if (!head || head.due > now) return false;
    fifoShift(this.held);
    this.completeRequest(head.pkt, head.buf);
    return true;
  }

  /** Replay: whether the request of transaction `tx` is held (searched from the soonest due). */
  isHeld(tx: TxId): boolean {
    return this.heldIndex(tx) >= 0;
  }

  private heldIndex(tx: TxId): number {
    const items = this.held.items;
    for (let k = this.held.head; k < items.length; k++) if (items[k]!.tx === tx) return k;
    return -1;
  }

  /** Replay: completes the held request of transaction `tx` (a real trace decides when). */
  completeHeld(tx: TxId): boolean {
    const i = this.heldIndex(tx);
    if (i < 0) return false;
    const [r] = this.held.items.splice(i, 1);
    this.completeRequest(r!.pkt, r!.buf);
    return true;
  }

  /** Replay: the first event the next delivery would write, without delivering. */
  peekDelivery(): { ev: 'pkt.recv' | 'pkt.complete' | 'pkt.completion'; tx: TxId; dir: 'g2h' | 'h2g' } | null {
    const ch = this.channel;
    const redo = ch.deferred[0];
    if (redo) return { ev: 'pkt.complete', tx: decodeHeader(redo.payload)?.tx ?? 0, dir: 'g2h' };
    const inc = ch.incoming;
    const v = inc?.peek();
    if (!inc || !v) return null;
    if (v.type === 0xb) {
      const p = ch.awaiting.get(v.transId);
      return { ev: 'pkt.completion', tx: p ? (p.pointer as HostTx).tx : peekTx(inc, v), dir: 'h2g' };
    }
    return { ev: 'pkt.recv', tx: peekTx(inc, v), dir: 'g2h' };
  }

  /** (ServerVspCallbacks, after Paused) */
  onSuspend(): void {
    // KMCL waits until every incoming packet is completed: complete the held ones now.
    const held = fifoItems(this.held);
    this.held = fifo();
    // A VM being discarded (a checkpoint applied over it) takes its guest along: what the
    // VSP completes now reaches nobody, so it is not traced as a completion.
    if (this.discarding) for (const r of held) this.channel.packetComplete(r.pkt, null);
    else for (const r of held) this.completeRequest(r.pkt, r.buf);
  }

  // ------------------------------------------------------------ host transactions

  /** Sends `count` HostTransactions (or Notifies) with tx numbers from `firstTx`. */
  send(kind: 'transaction' | 'notify', firstTx: TxId, count: number, size: number, guestHold: number): void {
    for (let i = 0; i < count; i++) {
      const tx = txAdd(firstTx, i);
      const type = kind === 'transaction' ? MsgType.HostTransaction : MsgType.Notify;
      const msg = encodeMessage(type, tx, size, kind === 'transaction' ? guestHold : 0);
      const p = this.channel.packetAllocate();
      const d = this.sendDigest;
      fnv1a64Into(d, msg);
      const state: HostTx = { tx, type, length: size, hold: guestHold, digestHi: d.hi, digestLo: d.lo, saveDigest: null };
      p.pointer = state;
      p.completionRoutine = this.completionRoutine;
      const wait = kind === 'transaction';
      this.opts.sink.emit({
        side: 'host', ev: 'pkt.send', ch: this.opts.ch, tx, dir: 'h2g', len: size, digest: hexOfHalves(d.hi, d.lo), wantCompletion: wait,
      });
      checkCall('VmbPacketSend', this.channel.packetSend(p, msg, wait ? FORMAT_FLAG_WAIT_FOR_COMPLETION : 0), this.fail);
      if (p.state === 'queued') this.opts.sink.emit({ side: 'host', ev: 'pkt.queued', ch: this.opts.ch, tx, dir: 'h2g' });
    }
  }

  private onCompletion(p: VmbPacket, status: NtStatus, resp: Uint8Array | null): void {
    const st = p.pointer as HostTx;
    if (st.type === MsgType.HostTransaction) {
      if (status !== STATUS.SUCCESS || resp === null) {
        // Cancelled at teardown: the transaction did not complete, so nothing is traced
        // as a completion. At a rescind it ends here, and the trace says so.
        if (this.rescinding) this.traceCancel(st.tx, status);
      } else {
        const h = decodeHeaderInto(completionHeader, resp);
        this.opts.sink.emit({
          side: 'host', ev: 'pkt.completion', ch: this.opts.ch, tx: st.tx, dir: 'h2g',
          status: statusHex(h ? h.arg0 : Status.DataError), digest: digestHex(resp, 0, h ? Math.min(h.length, resp.length) : resp.length),
        });
      }
    }
    this.channel.packetFree(p);
  }

  // ------------------------------------------------------------ save / restore

  /** (ServerVspCallbacks) */
  onSavePacket(p: VmbPacket, buf: Uint8Array | null, out: { bytesNeeded: number }): NtStatus {
    if (buf === null || buf.length < SAVEBUF_SIZE) {
      out.bytesNeeded = SAVEBUF_SIZE;
      return STATUS.BUFFER_TOO_SMALL;
    }
    const st = p.pointer as HostTx;
    writeSaveRecord(buf, st, st.digestHi, st.digestLo);
    // The record is the same at every save of this transaction (its fields never change),
    // so its digest is computed once: a packet in flight is saved at every save point of
    // explore's walk, and this digest was a twentieth of a save.
    const saveDigest = st.saveDigest ?? (st.saveDigest = digestHex(buf, 0, SAVEBUF_SIZE));
    this.opts.sink.emit({
      side: 'host', ev: 'pkt.save', ch: this.opts.ch, tx: st.tx, dir: 'h2g',
      libLen: currentSaveLibLength(this.channel), saveLen: SAVEBUF_SIZE, saveDigest,
    });
    return STATUS.SUCCESS;
  }

  /** (ServerVspCallbacks) */
  onRestorePacket(lib: Uint8Array, save: Uint8Array): NtStatus {
    const st = readSaveRecord(save);
    if (!st) return STATUS.INVALID_PARAMETER;
    const p = this.channel.packetAllocate();
    const r = packetRestore(p, lib);
    if (r !== STATUS.SUCCESS) {
      this.channel.packetFree(p);
      return r;
    }
    this.restoring.push(p);
    p.pointer = st;
    p.completionRoutine = this.completionRoutine;
    // Computed from the bytes handed back (what the check compares with the save's), and
    // kept: the next save writes these very bytes (readSaveRecord's invariant).
    st.saveDigest = digestHex(save);
    this.opts.sink.emit({ side: 'host', ev: 'pkt.restore', ch: this.opts.ch, tx: st.tx, dir: 'h2g', saveDigest: st.saveDigest });
    return STATUS.SUCCESS;
  }

  /** Pause, then SaveBegin / SaveContinue* / SaveEnd. Returns the filled buffers. */
  save(): Uint8Array[] {
    return saveServerChannel(this.channel, this.opts.saveBufferSize, this.fail);
  }

  /**
   * After a save of a VM that goes on running (a checkpoint taken under the
   * runningCheckpoint choice save-and-continue, REVIEW section 2): VmbChannelStart on the
   * same channel object, as the C VSP's `resume` command does. Nothing is restored: the
   * packets queued in the library and those awaiting a completion are still this
   * channel's, each with its transaction record (its pointer), and go on from where the
   * Pause left them. (Requests held in mode Hold were completed by Suspend, as KMCL
   * requires before Pause returns, so none is held across it.)
   */
  resume(): void {
    this.channel.start();
  }

  /** Feeds the saved buffers back, in order, before the channel is enabled. */
  restore(buffers: readonly Uint8Array[]): void {
    this.restoring = [];
    try {
      restoreServerChannel(this.channel, buffers, this.fail);
    } catch (e) {
      // KMCL took back what the failed restore had added (channel-save.ts rollback); the
      // packets are still ours to free (REVIEW D3), which the rescind that follows does.
      if (e instanceof VspError) this.failedRestore = this.restoring;
      else this.failedRestore = [];
      throw e;
    } finally {
      this.restoring = [];
    }
  }

  /** What a packet cancelled at a rescind completes with (KMCL's cancel status, a choice). */
  private cancelStatus(): NtStatus {
    return this.opts.choices.cancelStatus === 'cancelled' ? STATUS.CANCELLED : STATUS.DEVICE_REMOVED;
  }

  private traceCancel(tx: TxId, status: NtStatus): void {
    this.opts.sink.emit({ side: 'host', ev: 'pkt.cancel', ch: this.opts.ch, tx, dir: 'h2g', status: statusHex(status) });
  }

  /**
   * The host rescinds this channel instance (lab/drivers/PROTOCOL.md, "Rescind and
   * re-offer"): a rescind racing traffic, a FORCE_NEW_CHANNEL channel after a restore, or
   * the fallback for a restore that failed, as openvmm's vmbus server revokes a channel
   * it could not restore. After the bench's `ch.rescind`, the VSP ends what it still owns: the
   * packets of a failed restore (freed, each traced as cancelled) and, through
   * VmbChannelDisable, every host transaction queued or awaiting its completion (KMCL
   * cancels them; the completion routine traces pkt.cancel). Then VmbChannelCleanup:
   * this object is done, and the re-offer is a new one.
   */
  rescind(): void {
    this.rescinding = true;
    try {
      this.channel.disable();
      // Those KMCL took back (a rollback leaves them idle) are ours to end and free.
      const status = this.cancelStatus();
      for (const p of this.failedRestore) {
        if (p.state === 'freed') continue;
        const st = p.pointer as HostTx | null;
        if (st && st.type === MsgType.HostTransaction) this.traceCancel(st.tx, status);
        this.channel.packetFree(p);
      }
      this.failedRestore = [];
      this.channel.cleanup();
    } finally {
      this.rescinding = false;
    }
  }

  /**
   * The guest closed this channel (lab/drivers/PROTOCOL.md, "Guest close"): KMCL suspends
   * it (the VSP completes the requests it held, deferred ones are delivered first) and
   * runs Closed. The guest then ends its own requests; `retireClosed` follows.
   */
  guestClosed(): void {
    this.channel.peerClosed();
  }

  /**
   * After a guest close, the VSP retires what it had outstanding on the channel (REVIEW
   * D6): each host transaction queued or awaiting its completion ends at its completion
   * routine with the cancel status, traced as pkt.cancel; queued Notifies and completions
   * go. The channel object stays, closed and offered, for the guest to open again.
   */
  retireClosed(): void {
    this.rescinding = true;
    try {
      this.channel.retireOutstanding();
    } finally {
      this.rescinding = false;
    }
  }

  /**
   * The host objects go: after a save (the saved state carries what was in flight), or
   * with a VM being discarded. The real teardown (REVIEW E10): VmbChannelDisable, which
   * suspends a running channel, closes it and cancels the packets still queued or awaiting
   * their completion (their routine frees them; a cancelled transaction is not traced as
   * completed), then VmbChannelCleanup, which finds no packet left unfreed.
   */
  teardown(opts: { discard: boolean }): void {
    this.discarding = opts.discard;
    this.channel.disable();
    this.channel.cleanup();
  }
}
