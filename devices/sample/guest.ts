// The sample guest driver's TypeScript twin: the guest side of lab/drivers/PROTOCOL.md.
//
// It is modelled on the Linux guest driver, which talks to the rings directly rather
// than through KMCL. All of its state is plain data (GuestState), because that state
// is guest memory: a saved VM, a checkpoint or a migration carries it as it carries the
// rings, and applying a checkpoint puts an older copy back.

import { nextTxId, type TxId } from '../../src/vmbus/tx-id.ts';
import type { OutgoingRing, IncomingRing } from '../../src/vmbus/ring.ts';
import { PACKET_FLAG_COMPLETION_REQUESTED, PacketType } from '../../src/vmbus/ring-layout.ts';
import type { TraceSink } from '../../src/trace/sink.ts';
import { fifo, fifoInsertSorted, fifoLength, fifoPeek, fifoShift, type Fifo } from '../../src/vmbus/fifo.ts';
import { digestHex, fnv1a64Into, hexOfHalves, type DigestHalves } from '../../src/devices/digest.ts';
import { peekTx } from './peek.ts';
import { addGuestKeyers } from './guest-keys.ts';
import { fromGuestImage, toGuestImage, type GuestImageV3 } from './guest-image.ts';
import {
  MsgType,
  Status,
  decodeHeaderInto,
  encodeCompletion,
  encodeMessage,
  isIntact,
  newHeader,
  statusFor,
  statusHex,
  CompletionMode,
} from './protocol.ts';
import type { GuestDriver } from '../../src/device-api/device-module.ts';
import {
  abandonQueuedSends, canDeliver, canFlush, deliverOne, flushOne, hostSignalled, queuedWrites, traceUnacceptable, writeOrQueue, type GuestChannelIo, type GuestReceiver, type QueuedWrite,
} from '../../src/device-api/guest-channel-io.ts';
import type { StateKey } from '../../src/scenario/state-key.ts';

/** Scratch for the header of the packet being received (read and used before the next one). */
const recvHeader = newHeader();

interface HeldTransaction {
  transId: TxId;
  tx: TxId;
  due: number;
  response: Uint8Array;
  status: number;
}

/** One channel's state; the ring I/O fields (ch, queue, interrupt, draining, writable) are GuestChannelIo's. */
export interface GuestChannelState extends GuestChannelIo {
  nextTx: TxId;
  nextTransId: TxId;
  /** our requests awaiting the host's completion: descriptor transaction id -> tx */
  awaiting: Map<TxId, TxId>;
  /** host transactions we hold before completing, soonest due first */
  held: Fifo<HeldTransaction>;
  /**
   * The host rescinded the channel and we have not opened a new instance yet (a scenario's
   * `rescind` with `reopen: false`, until `guest-open`). Absent while open.
   */
  closed?: true;
}

export interface GuestState {
  channels: GuestChannelState[];
  /** the guest's clock when the image was taken; holds are shifted by the time away */
  takenAt: number;
}

/** `firstTx[i]`: channel i's first tx and trans_id (1 unless a scenario says otherwise). */
export function newGuestState(channels: readonly number[], firstTx: readonly TxId[] = []): GuestState {
  return {
    channels: channels.map((ch, i) => ({
      ch, nextTx: firstTx[i] ?? 1, nextTransId: firstTx[i] ?? 1, queue: fifo<QueuedWrite>(), awaiting: new Map(), held: fifo<HeldTransaction>(), interrupt: true, draining: false, writable: true,
    })),
    takenAt: 0,
  };
}

/** Signals from the guest to the host side of one channel. */
export interface HostDoorbell {
  interrupt(ch: number): void;
  writable(ch: number): void;
}

/** The running guest driver: its state plus views of the rings in guest memory. */
export class SampleGuest implements GuestDriver {
  readonly state: GuestState;
  private readonly rings: Map<number, { out: OutgoingRing; in: IncomingRing }>;
  private readonly sink: TraceSink;
  private readonly host: HostDoorbell;
  private readonly byCh = new Map<number, GuestChannelState>();
  // The scheduler asks about one channel several times per step: remember the last
  // lookup (saves two Map lookups per question).
  private lastCh = NaN;
  private lastC: GuestChannelState | null = null;
  private lastRings: { out: OutgoingRing; in: IncomingRing } | null = null;
  /** scratch for the digest of the message being received (no allocation per packet) */
  private readonly recvDigest: DigestHalves = { hi: 0, lo: 0 };
  /** what this twin does with each packet the receive loop takes (made once, not per packet) */
  private readonly receiver: GuestReceiver<GuestChannelState> = {
    completion: (c, transId, payload) => this.onCompletion(c, transId, payload),
    message: (c, transId, wantCompletion, payload, now) => this.onMessage(c, transId, wantCompletion, payload, now),
  };

  constructor(
    state: GuestState,
    rings: Map<number, { out: OutgoingRing; in: IncomingRing }>,
    sink: TraceSink,
    host: HostDoorbell,
  ) {
    this.state = state;
    this.rings = rings;
    this.sink = sink;
    this.host = host;
    for (const c of state.channels) this.byCh.set(c.ch, c);
    for (const [ch, r] of rings) traceUnacceptable(r.in, ch, sink);
  }

  private chan(ch: number): GuestChannelState {
    if (ch === this.lastCh) return this.lastC!;
    const c = this.byCh.get(ch);
    if (!c) throw new RangeError(`guest has no channel ${ch}`);
    this.lastCh = ch;
    this.lastC = c;
    this.lastRings = this.rings.get(ch)!;
    return c;
  }

  /** The rings of channel `ch` (after `chan(ch)`, which remembers them). */
  private ringsOf(ch: number): { out: OutgoingRing; in: IncomingRing } {
    return ch === this.lastCh ? this.lastRings! : this.rings.get(ch)!;
  }

  /** The host signalled us. */
  signal(ch: number, what: 'interrupt' | 'writable'): void {
    hostSignalled(this.chan(ch), what);
  }

  // ------------------------------------------------------------ sending

  /** Sends `count` Requests (or Notifies) of `size` bytes. */
  send(ch: number, kind: 'request' | 'notify', count: number, size: number, how: 'inline' | 'deferred' | 'hold', vspHold: number): void {
    const c = this.chan(ch);
    const mode = how === 'inline' ? CompletionMode.Inline : how === 'deferred' ? CompletionMode.Deferred : CompletionMode.Hold;
    for (let i = 0; i < count; i++) {
      const tx = c.nextTx;
      c.nextTx = nextTxId(tx);
      const request = kind === 'request';
      const msg = encodeMessage(request ? MsgType.Request : MsgType.Notify, tx, size, request ? mode : 0, request ? vspHold : 0);
      const transId = c.nextTransId;
      c.nextTransId = nextTxId(transId);
      if (request) c.awaiting.set(transId, tx);
      this.sink.emit({ side: 'guest', ev: 'pkt.send', ch, tx, dir: 'g2h', len: size, digest: digestHex(msg), wantCompletion: request });
      const queued = this.write(c, request ? PACKET_FLAG_COMPLETION_REQUESTED : 0, PacketType.dataInBand, transId, msg);
      if (queued) this.sink.emit({ side: 'guest', ev: 'pkt.queued', ch, tx, dir: 'g2h' });
    }
  }

  /** Writes now if the ring has room and nothing is queued before it; else queues. Returns true if queued. */
  private write(c: GuestChannelState, flags: number, type: number, transId: TxId, payload: Uint8Array): boolean {
    return writeOrQueue(c, this.ringsOf(c.ch).out, this.host, flags, type, transId, payload);
  }

  canFlush(ch: number): boolean {
    return canFlush(this.chan(ch));
  }

  queued(ch: number): number {
    return queuedWrites(this.chan(ch));
  }

  /** Gives up the sends queued on `ch` (GuestDriver.abandonQueued: a Linux driver's send timeout). */
  abandonQueued(ch: number): void {
    abandonQueuedSends(this.chan(ch), this.ringsOf(ch).out);
  }

  flushOne(ch: number): void {
    const c = this.chan(ch);
    flushOne(c, this.ringsOf(ch).out, this.host);
  }

  // ------------------------------------------------------------ receiving

  canDeliver(ch: number): boolean {
    const c = this.chan(ch);
    // A closed channel has no rings, and rescind cleared interrupt and draining: test them
    // before looking the rings up.
    return (c.interrupt || c.draining) && canDeliver(c, this.ringsOf(ch).in);
  }

  /** Takes one packet from the host->guest ring (the shared receive loop; this twin's protocol in `receiver`). */
  deliverOne(ch: number, now: number): void {
    const c = this.chan(ch);
    deliverOne(c, this.ringsOf(ch).in, this.host, now, this.receiver);
  }

  private onCompletion(c: GuestChannelState, transId: TxId, payload: Uint8Array): void {
    const tx = c.awaiting.get(transId);
    if (tx === undefined) return; // not ours: the checker sees the spurious/missing pair
    c.awaiting.delete(transId);
    const h = decodeHeaderInto(recvHeader, payload);
    const len = h ? Math.min(h.length, payload.length) : payload.length;
    this.sink.emit({
      side: 'guest', ev: 'pkt.completion', ch: c.ch, tx, dir: 'g2h',
      status: statusHex(h ? h.arg0 : Status.DataError), digest: digestHex(payload, 0, len),
    });
  }

  private onMessage(c: GuestChannelState, transId: TxId, wantCompletion: boolean, payload: Uint8Array, now: number): void {
    const h = decodeHeaderInto(recvHeader, payload);
    const len = h ? Math.min(h.length, payload.length) : payload.length;
    const tx = h?.tx ?? 0;
    // pkt.recv carries the digest of what arrived, and the completion quotes it: hashed once.
    const d = this.recvDigest;
    fnv1a64Into(d, payload, 0, len);
    this.sink.emit({ side: 'guest', ev: 'pkt.recv', ch: c.ch, tx, dir: 'h2g', len, digest: hexOfHalves(d.hi, d.lo) });
    if (!wantCompletion) return;
    const status = h ? statusFor(h.tx, isIntact(payload, h)) : Status.DataError;
    const response = h ? encodeCompletion(payload, h, status, d) : new Uint8Array(0);
    const hold = h && h.type === MsgType.HostTransaction ? h.arg0 : 0;
    fifoInsertSorted(c.held, { transId, tx, due: now + hold, response, status }, byDue);
  }

  nextDue(ch: number): number | null {
    return fifoPeek(this.chan(ch).held)?.due ?? null;
  }

  /** Completes the earliest held transaction if it is due. */
  completeDue(ch: number, now: number): boolean {
    const c = this.chan(ch);
    const head = fifoPeek(c.held);
    if (!head || head.due > now) return false;
    const h = fifoShift(c.held)!;
    this.sink.emit({
      side: 'guest', ev: 'pkt.complete', ch: c.ch, tx: h.tx, dir: 'h2g',
      status: statusHex(h.status), len: h.response.length, digest: digestHex(h.response),
    });
    this.write(c, 0, PacketType.completion, h.transId, h.response);
    return true;
  }

  /** Replay: whether host transaction `tx` is held on channel `ch` (searched from the soonest due). */
  isHeld(ch: number, tx: TxId): boolean {
    return this.heldIndex(this.chan(ch), tx) >= 0;
  }

  private heldIndex(c: GuestChannelState, tx: TxId): number {
    const items = c.held.items;
    for (let k = c.held.head; k < items.length; k++) if (items[k]!.tx === tx) return k;
    return -1;
  }

  /** Replay: completes held transaction `tx` now (a real trace decides when). */
  completeHeld(ch: number, tx: TxId): boolean {
    const c = this.chan(ch);
    const i = this.heldIndex(c, tx);
    if (i < 0) return false;
    const [h] = c.held.items.splice(i, 1);
    this.sink.emit({
      side: 'guest', ev: 'pkt.complete', ch: c.ch, tx: h!.tx, dir: 'h2g',
      status: statusHex(h!.status), len: h!.response.length, digest: digestHex(h!.response),
    });
    this.write(c, 0, PacketType.completion, h!.transId, h!.response);
    return true;
  }

  /** Replay: the first event the next delivery would write, without delivering. */
  peekDelivery(ch: number): { ev: 'pkt.recv' | 'pkt.completion'; tx: TxId; dir: 'g2h' | 'h2g' } | null {
    const c = this.chan(ch);
    const inc = this.ringsOf(ch).in;
    const v = inc.peek();
    if (!v) return null;
    if (v.type === PacketType.completion) return { ev: 'pkt.completion', tx: c.awaiting.get(v.transId) ?? 0, dir: 'g2h' };
    return { ev: 'pkt.recv', tx: peekTx(inc, v), dir: 'h2g' };
  }

  /** Explore's state key: the per-transaction collections, keyed field by field in a fixed order (guest-keys.ts). */
  keyers(add: (collection: object, key: (k: StateKey) => void) => void): void {
    for (const c of this.state.channels) addGuestKeyers(add, c);
  }

  /** Explore's state key: how each channel's ring reader waits. */
  ringReaders(): Iterable<{ ch: number; holder: object; draining: boolean; interrupt: boolean }> {
    return this.state.channels.map((c) => ({ ch: c.ch, holder: c, draining: c.draining, interrupt: c.interrupt }));
  }

  // ------------------------------------------------------------ rescind and re-offer

  /**
   * The host rescinded channel `ch` (lab/drivers/PROTOCOL.md, "Rescind and re-offer"), as
   * Linux's vmbus_onoffer_rescind removes the device and closes the channel: the guest
   * reads nothing more from the old rings. What the old channel had in flight ends here,
   * under the protocol's rule: each of our requests still awaiting its completion (in the
   * ring, or queued behind a full one) ends at once with STATUS_CANCELLED (`pkt.cancel`)
   * and is never sent again, since the host may or may not have processed it; host
   * transactions we held are dropped uncompleted (the host ends them on its side); queued
   * completions and notifies go with the rings. Our tx counters go on, so the new
   * instance never reuses an id of the old one. The guest's own close (a scenario's
   * `guest-close`; PROTOCOL.md "Guest close") does the same: the executor calls this.
   */
  rescind(ch: number): void {
    const c = this.chan(ch);
    // Closed already (offered anew and not opened yet): nothing of ours is on it.
    if (c.closed) return;
    c.closed = true;
    this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state: 'Closed' });
    const status = statusHex(Status.Cancelled);
    // Invariant: awaiting holds our requests in the order we sent them (Map order).
    for (const tx of c.awaiting.values()) this.sink.emit({ side: 'guest', ev: 'pkt.cancel', ch, tx, dir: 'g2h', status });
    c.awaiting.clear();
    c.queue = fifo<QueuedWrite>();
    c.held = fifo<HeldTransaction>();
    c.interrupt = false;
    c.draining = false;
    c.writable = false;
    // The old ring views are not to be used again (reopen brings the new instance's).
    this.rings.delete(ch);
    this.lastCh = NaN;
  }

  /**
   * The guest opens the new instance of channel `ch` on `rings` (fresh ring memory it
   * donated for the new offer): Opened, then Active, and it looks at the ring once.
   */
  reopen(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void {
    const c = this.chan(ch);
    delete c.closed;
    this.rings.set(ch, rings);
    this.lastCh = NaN;
    traceUnacceptable(rings.in, ch, this.sink);
    c.interrupt = true;
    c.writable = true;
    this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state: 'Opened' });
    this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state: 'Active' });
  }

  /** Whether the guest has channel `ch` closed (rescinded, no new instance opened yet). */
  isClosed(ch: number): boolean {
    return this.chan(ch).closed === true;
  }

  /** Outstanding work that should eventually finish: requests awaiting, held, queued. */
  pending(): number {
    let n = 0;
    for (const c of this.state.channels) n += c.awaiting.size + fifoLength(c.held) + fifoLength(c.queue);
    return n;
  }
}

const byDue = (h: HeldTransaction): number => h.due;

/** The guest's state as a saved VM holds it, taken at time `now` (guest-image.ts). */
export function snapshotGuest(state: GuestState, now: number): GuestImageV3 {
  return toGuestImage(state, now);
}

/** Brings a decoded image (any version) back at time `now`: holds keep the time they had left. */
export function reviveGuest(image: unknown, now: number): GuestState {
  return fromGuestImage(image, now);
}
