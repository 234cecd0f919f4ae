// The blockq guest driver's TypeScript twin: the guest side of PROTOCOL.md, on the rings in
// guest memory (it talks to the rings directly, as a Linux driver does). Like the VSP it
// answers what wants an answer (the host's events) after each one's delay, out of order,
// with replies of varying size. All its state is plain data (BlockqGuestState): it is
// guest memory, which a saved VM, a checkpoint or a migration carries.

import { isTxId, nextTxId, type TxId } from '../../src/vmbus/tx-id.ts';
import { PACKET_FLAG_COMPLETION_REQUESTED, PacketType } from '../../src/vmbus/ring-layout.ts';
import { fifo, fifoInsertSorted, fifoLength, fifoPeek, fifoPush, fifoShift, type Fifo } from '../../src/vmbus/fifo.ts';
import { u64FromHalves } from '../../src/vmbus/le-bytes.ts';
import { RestoreError } from '../../src/vmbus/saved-state.ts';
import type { TraceSink } from '../../src/trace/sink.ts';
import type { IncomingRing, OutgoingRing } from '../../src/vmbus/ring.ts';
import { hexOfHalves, type DigestHalves } from '../../src/devices/digest.ts';
import type { DeliveryPeek, GuestDriver, GuestRings, HostDoorbell } from '../../src/device-api/device-module.ts';
import {
  abandonQueuedSends, canDeliver, canFlush, deliverOne, flushOne, hostSignalled, queuedWrites, traceUnacceptable, writeOrQueue, type GuestChannelIo, type GuestReceiver, type QueuedWrite,
} from '../../src/device-api/guest-channel-io.ts';
import {
  Mode, MsgType, Status, answerDelay, decodeHeader, digestOf, encodeMessage, encodeReply, isIntact, replyLength, replyStatus, statusFor, statusHex,
} from './protocol.ts';

interface HeldEvent {
  transId: TxId;
  tx: TxId;
  due: number;
  reply: Uint8Array;
  status: number;
}

/** One channel's state; the ring I/O fields (ch, queue, interrupt, draining, writable) are GuestChannelIo's. */
export interface BlockqChannel extends GuestChannelIo {
  nextTx: TxId;
  nextTransId: TxId;
  /** our requests awaiting a reply: descriptor transaction id -> tx */
  awaiting: Map<TxId, TxId>;
  /**
   * host events we answer when due, soonest first.
   * Invariant: an event that wants a reply is here from its delivery until answered, once.
   */
  held: Fifo<HeldEvent>;
  /**
   * The guest has the channel closed: the host rescinded it, or the guest closed it
   * (`guest-close`), and no new instance is opened yet (PROTOCOL.md "Rescind and guest
   * close"). Absent while open. A closed channel has no rings: nothing is read or written.
   */
  closed?: true;
}

export interface BlockqGuestState {
  channels: BlockqChannel[];
}

/** The image a saved VM holds: the state, and the guest's clock when it was taken. */
interface BlockqGuestImage {
  blockq: 1;
  takenAt: number;
  channels: BlockqChannel[];
}

const byDue = (h: HeldEvent): number => h.due;

export function newBlockqState(channels: readonly number[], firstTx: readonly TxId[]): BlockqGuestState {
  return {
    channels: channels.map((ch, i) => ({
      ch, nextTx: firstTx[i] ?? 1, nextTransId: firstTx[i] ?? 1, queue: fifo<QueuedWrite>(), awaiting: new Map(), held: fifo<HeldEvent>(), interrupt: true, draining: false, writable: true,
    })),
  };
}

export function snapshotBlockq(state: BlockqGuestState, now: number): BlockqGuestImage {
  // The saved VM is serialized at once (saved-state.ts), so the image may share the live state.
  return { blockq: 1, takenAt: now, channels: state.channels };
}

/** Back from an image at `now`: holds keep the time they had left. A malformed image is a RestoreError. */
export function reviveBlockq(image: unknown, now: number): BlockqGuestState {
  const bad = (what: string): never => {
    throw new RestoreError('bad-record', `blockq guest image: ${what}`);
  };
  const img = image as Partial<BlockqGuestImage> | null;
  if (typeof img !== 'object' || img === null || img.blockq !== 1 || typeof img.takenAt !== 'number' || !Array.isArray(img.channels)) bad('not a blockq guest image');
  const shift = now - img!.takenAt!;
  const channels = img!.channels!.map((c, i): BlockqChannel => {
    const at = `channel ${i}`;
    if (typeof c !== 'object' || c === null || !Number.isInteger(c.ch) || !isTxId(c.nextTx) || !isTxId(c.nextTransId)) bad(`${at}: ch, nextTx or nextTransId missing`);
    if (!(c.awaiting instanceof Map) || ![...c.awaiting].every(([a, b]) => isTxId(a) && isTxId(b))) bad(`${at}: awaiting is not a map of transaction ids`);
    const queue = fifo<QueuedWrite>();
    for (const w of fifoItemsOf<QueuedWrite>(c.queue, `${at} queue`, bad)) {
      if (!(w.payload instanceof Uint8Array) || !isTxId(w.transId) || !Number.isInteger(w.type) || !Number.isInteger(w.flags)) bad(`${at}: a queued write is malformed`);
      fifoPush(queue, { flags: w.flags, type: w.type, transId: w.transId, payload: w.payload });
    }
    const held = fifo<HeldEvent>();
    for (const h of fifoItemsOf<HeldEvent>(c.held, `${at} held`, bad)) {
      if (!(h.reply instanceof Uint8Array) || !isTxId(h.transId) || !isTxId(h.tx) || typeof h.due !== 'number' || !Number.isInteger(h.status)) bad(`${at}: a held event is malformed`);
      fifoPush(held, { transId: h.transId, tx: h.tx, due: h.due + shift, reply: h.reply, status: h.status });
    }
    if (c.closed !== undefined && c.closed !== true) bad(`${at}: closed is not true`);
    // A restored driver looks at its ring once (the host may have written while it was
    // away); a closed channel has no ring to look at, and nothing of it is in flight.
    if (c.closed && (c.awaiting.size > 0 || queue.items.length > 0 || held.items.length > 0)) bad(`${at}: a closed channel has work in flight`);
    const open = c.closed !== true;
    return {
      ch: c.ch, nextTx: c.nextTx, nextTransId: c.nextTransId, queue, awaiting: new Map(c.awaiting), held, interrupt: open, draining: false, writable: open, ...(open ? {} : { closed: true as const }),
    };
  });
  return { channels };
}

function fifoItemsOf<T>(q: unknown, what: string, bad: (w: string) => never): T[] {
  const f = q as Fifo<T> | null;
  if (typeof f !== 'object' || f === null || !Array.isArray(f.items) || !Number.isInteger(f.head) || f.head < 0 || f.head > f.items.length) bad(`${what} is not a queue`);
  return f!.items.slice(f!.head);
}

export class BlockqGuest implements GuestDriver {
  readonly state: BlockqGuestState;
  private readonly rings: GuestRings;
  private readonly sink: TraceSink;
  private readonly host: HostDoorbell;
  private readonly byCh = new Map<number, BlockqChannel>();
  private readonly d: DigestHalves = { hi: 0, lo: 0 };
  /** what this twin does with each packet the receive loop takes (made once, not per packet) */
  private readonly receiver: GuestReceiver<BlockqChannel> = {
    completion: (c, transId, payload) => this.onReply(c, transId, payload),
    message: (c, transId, wantsReply, payload, now) => this.onMessage(c, transId, wantsReply, payload, now),
  };

  constructor(state: BlockqGuestState, rings: GuestRings, sink: TraceSink, host: HostDoorbell) {
    this.state = state;
    this.rings = rings;
    this.sink = sink;
    this.host = host;
    for (const c of state.channels) this.byCh.set(c.ch, c);
    for (const [ch, r] of rings) traceUnacceptable(r.in, ch, sink);
  }

  private chan(ch: number): BlockqChannel {
    const c = this.byCh.get(ch);
    if (!c) throw new RangeError(`blockq guest has no channel ${ch}`);
    return c;
  }

  /** The host signalled us. */
  signal(ch: number, what: 'interrupt' | 'writable'): void {
    hostSignalled(this.chan(ch), what);
  }

  // ------------------------------------------------------------ sending

  send(ch: number, kind: 'request' | 'notify', count: number, size: number, mode: 'inline' | 'deferred' | 'hold', vspHold: number): void {
    const c = this.chan(ch);
    const request = kind === 'request';
    for (let i = 0; i < count; i++) {
      const tx = c.nextTx;
      c.nextTx = nextTxId(tx);
      const msg = encodeMessage(request ? MsgType.Request : MsgType.Note, tx, size, request ? Mode[mode] : 0, request && mode === 'hold' ? vspHold : 0);
      const transId = c.nextTransId;
      c.nextTransId = nextTxId(transId);
      if (request) c.awaiting.set(transId, tx);
      digestOf(this.d, msg);
      this.sink.emit({ side: 'guest', ev: 'pkt.send', ch, tx, dir: 'g2h', len: size, digest: hexOfHalves(this.d.hi, this.d.lo), wantCompletion: request });
      if (this.write(c, request ? PACKET_FLAG_COMPLETION_REQUESTED : 0, PacketType.dataInBand, transId, msg)) {
        this.sink.emit({ side: 'guest', ev: 'pkt.queued', ch, tx, dir: 'g2h' });
      }
    }
  }

  /** Writes now if there is room and nothing queued before it; else queues (true). */
  private write(c: BlockqChannel, flags: number, type: number, transId: TxId, payload: Uint8Array): boolean {
    return writeOrQueue(c, this.rings.get(c.ch)!.out, this.host, flags, type, transId, payload);
  }

  canFlush(ch: number): boolean {
    return canFlush(this.chan(ch));
  }

  queued(ch: number): number {
    return queuedWrites(this.chan(ch));
  }

  /** Gives up the sends queued on `ch` (GuestDriver.abandonQueued: a Linux driver's send timeout). */
  abandonQueued(ch: number): void {
    abandonQueuedSends(this.chan(ch), this.rings.get(ch)!.out);
  }

  flushOne(ch: number): void {
    flushOne(this.chan(ch), this.rings.get(ch)!.out, this.host);
  }

  // ------------------------------------------------------------ receiving

  canDeliver(ch: number): boolean {
    const c = this.chan(ch);
    // A closed channel has no rings, and rescind cleared interrupt and draining: test them first.
    return (c.interrupt || c.draining) && canDeliver(c, this.rings.get(ch)!.in);
  }

  /** Takes one packet from the host->guest ring (the shared receive loop; blockq's protocol in `receiver`). */
  deliverOne(ch: number, now: number): void {
    deliverOne(this.chan(ch), this.rings.get(ch)!.in, this.host, now, this.receiver);
  }

  private onReply(c: BlockqChannel, transId: TxId, payload: Uint8Array): void {
    const tx = c.awaiting.get(transId);
    if (tx === undefined) return; // not ours: the checker sees the spurious or missing pair
    c.awaiting.delete(transId);
    digestOf(this.d, payload, replyLength(payload));
    this.sink.emit({ side: 'guest', ev: 'pkt.completion', ch: c.ch, tx, dir: 'g2h', status: statusHex(replyStatus(payload)), digest: hexOfHalves(this.d.hi, this.d.lo) });
  }

  private onMessage(c: BlockqChannel, transId: TxId, wantsReply: boolean, payload: Uint8Array, now: number): void {
    const h = decodeHeader(payload);
    const len = h ? Math.min(h.length, payload.length) : payload.length;
    digestOf(this.d, payload, len);
    this.sink.emit({ side: 'guest', ev: 'pkt.recv', ch: c.ch, tx: h?.tx ?? 0, dir: 'h2g', len, digest: hexOfHalves(this.d.hi, this.d.lo) });
    if (!wantsReply) return;
    const status = h ? statusFor(h.tx, isIntact(payload, h)) : Status.DeviceDataError;
    const reply = h ? encodeReply(h, status, this.d) : new Uint8Array(0);
    const tx = h?.tx ?? 0;
    const hold = h && h.type === MsgType.Event ? h.hold : 0;
    fifoInsertSorted(c.held, { transId, tx, due: now + answerDelay(tx, hold), reply, status }, byDue);
  }

  nextDue(ch: number): number | null {
    return fifoPeek(this.chan(ch).held)?.due ?? null;
  }

  completeDue(ch: number, now: number): boolean {
    const c = this.chan(ch);
    const head = fifoPeek(c.held);
    if (!head || head.due > now) return false;
    fifoShift(c.held);
    this.answer(c, head);
    return true;
  }

  private answer(c: BlockqChannel, h: HeldEvent): void {
    digestOf(this.d, h.reply);
    this.sink.emit({ side: 'guest', ev: 'pkt.complete', ch: c.ch, tx: h.tx, dir: 'h2g', status: statusHex(h.status), len: h.reply.length, digest: hexOfHalves(this.d.hi, this.d.lo) });
    this.write(c, 0, PacketType.completion, h.transId, h.reply);
  }

  private heldIndex(c: BlockqChannel, tx: TxId): number {
    const items = c.held.items;
    for (let k = c.held.head; k < items.length; k++) if (items[k]!.tx === tx) return k;
    return -1;
  }

  isHeld(ch: number, tx: TxId): boolean {
    return this.heldIndex(this.chan(ch), tx) >= 0;
  }

  completeHeld(ch: number, tx: TxId): boolean {
    const c = this.chan(ch);
    const i = this.heldIndex(c, tx);
    if (i < 0) return false;
    const [h] = c.held.items.splice(i, 1);
    this.answer(c, h!);
    return true;
  }

  peekDelivery(ch: number): DeliveryPeek | null {
    const c = this.chan(ch);
    const inc = this.rings.get(ch)!.in;
    const v = inc.peek();
    if (!v) return null;
    if (v.type === PacketType.completion) return { ev: 'pkt.completion', tx: c.awaiting.get(v.transId) ?? 0, dir: 'g2h' };
    const tx = v.payloadLen < 16 ? 0 : u64FromHalves(inc.mem.u32(v.payloadAt + 8), inc.mem.u32(v.payloadAt + 12));
    return { ev: 'pkt.recv', tx, dir: 'h2g' };
  }

  // ------------------------------------------------------------ rescind and guest close

  /**
   * The host rescinded channel `ch`, or the guest closes it (`cause` 'guest': a scenario's
   * `guest-close`), as Linux's vmbus_onoffer_rescind or an unbind runs the driver's remove
   * (PROTOCOL.md "Rescind and guest close"): the guest reads nothing more from the old
   * rings. Each of our Requests still awaiting its reply (in the ring, or queued behind a
   * full one) ends here with STATUS_CANCELLED (`pkt.cancel`) and is never sent again: the
   * VSP may or may not have answered it. The Events we held go unanswered (the host ends
   * them on its side); queued replies and Notes go with the rings. Our tx counters go
   * on, so the new instance never reuses an id of the old one. Closed already: nothing.
   */
  rescind(ch: number): void {
    const c = this.chan(ch);
    if (c.closed) return;
    c.closed = true;
    this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state: 'Closed' });
    const status = statusHex(Status.Cancelled);
    // Invariant: awaiting holds our Requests in the order we sent them (Map order).
    for (const tx of c.awaiting.values()) this.sink.emit({ side: 'guest', ev: 'pkt.cancel', ch, tx, dir: 'g2h', status });
    c.awaiting.clear();
    c.queue = fifo<QueuedWrite>();
    c.held = fifo<HeldEvent>();
    c.interrupt = false;
    c.draining = false;
    c.writable = false;
    // The old ring views are not to be used again (reopen brings the new instance's).
    this.rings.delete(ch);
  }

  /** The guest opens channel `ch`'s new instance on `rings` (fresh ring memory): Opened, Active, and it looks at the ring once. */
  reopen(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void {
    const c = this.chan(ch);
    delete c.closed;
    this.rings.set(ch, rings);
    traceUnacceptable(rings.in, ch, this.sink);
    c.interrupt = true;
    c.writable = true;
    this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state: 'Opened' });
    this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state: 'Active' });
  }

  /** Whether the guest has channel `ch` closed (rescinded or closed, no new instance opened yet). */
  isClosed(ch: number): boolean {
    return this.chan(ch).closed === true;
  }

  pending(): number {
    let n = 0;
    for (const c of this.state.channels) n += c.awaiting.size + fifoLength(c.held) + fifoLength(c.queue);
    return n;
  }

  ringReaders(): Iterable<{ ch: number; holder: object; draining: boolean; interrupt: boolean }> {
    return this.state.channels.map((c) => ({ ch: c.ch, holder: c, draining: c.draining, interrupt: c.interrupt }));
  }
}
