// A guest driver twin's I/O on one channel's two rings, for any device: the send queue
// that waits behind a full host-bound ring, and the receive loop on the guest-bound ring.
// It is what a Linux VMBus driver does around its own protocol (hv_ringbuffer_write and
// the channel callback's read loop in drivers/hv), so a device's guest twin keeps only
// what its protocol decides: what a packet means and what to answer.
//
// Everything it keeps lives in the twin's per-channel state (GuestChannelIo), which is
// plain data because it is guest memory (a saved VM carries it). The functions take the
// ring views and the doorbell as arguments and keep nothing of their own. They are on the
// hot path of every emulated packet: no allocation and no closure per packet.

import { txAdd, type TxId } from '../vmbus/tx-id.ts';
import type { IncomingRing, OutgoingRing } from '../vmbus/ring.ts';
import { PACKET_FLAG_COMPLETION_REQUESTED, PacketType, inBandFootprint } from '../vmbus/ring-layout.ts';
import { fifoLength, fifoPeek, fifoPush, fifoShift, type Fifo } from '../vmbus/fifo.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { HostDoorbell } from './device-module.ts';

/** A packet waiting for room in the host-bound ring. */
export interface QueuedWrite {
  /** PACKET_FLAG_COMPLETION_REQUESTED or 0 (0 for a completion the guest owes the host) */
  flags: number;
  /** PacketType.dataInBand or PacketType.completion */
  type: number;
  transId: TxId;
  payload: Uint8Array;
}

/** The ring I/O fields of a guest twin's per-channel state (the twin adds its own beside them). */
export interface GuestChannelIo {
  ch: number;
  /** writes waiting for ring space, oldest first */
  queue: Fifo<QueuedWrite>;
  /** the host signalled data, or the driver must look once (after open or restore) */
  interrupt: boolean;
  /** the reader is emptying the ring with the host's interrupts masked */
  draining: boolean;
  /** the host signalled free space after the driver advertised a pending send size */
  writable: boolean;
}

/** What a guest twin does with each packet the receive loop takes (its protocol). */
export interface GuestReceiver<C extends GuestChannelIo> {
  /** the host's completion of the guest's request sent with descriptor id `transId` */
  completion(c: C, transId: TxId, payload: Uint8Array): void;
  /** a host message (`wantsCompletion`: the host asked for a completion) */
  message(c: C, transId: TxId, wantsCompletion: boolean, payload: Uint8Array, now: number): void;
}

/**
 * The host signalled the channel: `interrupt` (it wrote to an empty guest-bound ring with
 * interrupts unmasked), or `writable` (its reads freed the room the guest advertised).
 * Each only sets a flag; the scheduler then asks canDeliver and canFlush.
 */
export function hostSignalled(c: GuestChannelIo, what: 'interrupt' | 'writable'): void {
  if (what === 'interrupt') c.interrupt = true;
  else c.writable = true;
}

// ------------------------------------------------------------------ sending

/**
 * Writes one packet now if the ring has room and nothing is queued before it, else queues
 * it (and, for the queue's first, advertises the room it needs). Returns true if queued.
 * Invariant: packets reach the ring in the order they were written or queued.
 */
export function writeOrQueue(c: GuestChannelIo, out: OutgoingRing, host: HostDoorbell, flags: number, type: number, transId: TxId, payload: Uint8Array): boolean {
  if (fifoLength(c.queue) === 0 && out.tryWrite(type, flags, transId, payload)) {
    if (out.commit()) host.interrupt(c.ch);
    return false;
  }
  const w: QueuedWrite = { flags, type, transId, payload };
  fifoPush(c.queue, w);
  if (fifoLength(c.queue) === 1) advertiseBlocked(c, out, w);
  return true;
}

/**
 * Tells the host how much room the queue's head needs (pending send size), so that it
 * signals `writable` once its reads free that much. If the room is there already (the
 * host read in between), the driver is writable at once: no signal would come.
 */
function advertiseBlocked(c: GuestChannelIo, out: OutgoingRing, head: QueuedWrite): void {
  const need = inBandFootprint(head.payload.length);
  out.setPendingSendSize(need);
  c.writable = out.free() >= need;
}

/** Whether a flush could make progress: something is queued and the host said there is room. */
export function canFlush(c: GuestChannelIo): boolean {
  return c.writable && fifoLength(c.queue) > 0;
}

/** How many writes wait in the queue behind a full ring (GuestDriver.queued). */
export function queuedWrites(c: GuestChannelIo): number {
  return fifoLength(c.queue);
}

/** Writes the queue's head if it fits now; else advertises its need again. */
export function flushOne(c: GuestChannelIo, out: OutgoingRing, host: HostDoorbell): void {
  const head = fifoPeek(c.queue);
  if (!head) return;
  if (!out.tryWrite(head.type, head.flags, head.transId, head.payload)) {
    advertiseBlocked(c, out, head);
    return;
  }
  if (out.commit()) host.interrupt(c.ch);
  fifoShift(c.queue);
  if (fifoLength(c.queue) === 0) out.setPendingSendSize(0);
}

/** A guest twin's channel that numbers its sends (tx, and the descriptor's transaction id) and awaits its requests' completions. */
export interface SendingChannel extends GuestChannelIo {
  nextTx: TxId;
  nextTransId: TxId;
  /** requests awaiting their completion: descriptor transaction id -> tx */
  awaiting: Map<TxId, TxId>;
}

/**
 * Gives up the sends waiting in the queue (GuestDriver.abandonQueued; a Linux driver's
 * send timeout): the data packets leave the queue, oldest first, and are not awaited; the
 * channel's tx and transaction ids go back by as many, so its next send reuses the first
 * (the Linux driver moves next_tx only when a send went in). What the guest owes the host
 * (completions) stays queued. Returns how many were given up.
 * Invariant: the queued sends are the channel's latest, in order (under bench check's
 * waiting model every step's sends are in the ring before the next step sends).
 */
export function abandonQueuedSends(c: SendingChannel, out: OutgoingRing): number {
  const kept: QueuedWrite[] = [];
  let gone = 0;
  for (let w = fifoShift(c.queue); w !== undefined; w = fifoShift(c.queue)) {
    if (w.type !== PacketType.dataInBand) kept.push(w);
    else {
      gone++;
      c.awaiting.delete(w.transId);
    }
  }
  for (const w of kept) fifoPush(c.queue, w);
  const head = fifoPeek(c.queue);
  if (head) advertiseBlocked(c, out, head);
  else out.setPendingSendSize(0);
  c.nextTx = txAdd(c.nextTx, -gone);
  c.nextTransId = txAdd(c.nextTransId, -gone);
  return gone;
}

// ------------------------------------------------------------------ receiving

/** Whether the receive loop has a packet to take: it was signalled (or is draining) and the ring is not empty. */
export function canDeliver(c: GuestChannelIo, inc: IncomingRing): boolean {
  return (c.interrupt || c.draining) && !inc.isEmpty();
}

/**
 * One turn of the receive loop: takes the next packet off the guest-bound ring, tells the
 * host when that freed the room it waits for, and hands the packet to `receiver`.
 * The first turn after a signal masks the host's interrupts (`draining`); the turn that
 * finds the ring empty unmasks them and looks once more, since the host may have written
 * between the look and the unmask without signalling (hv_ringbuffer's reader does the
 * same), so no packet waits for a signal that will not come.
 * Invariant: the interrupt mask is set exactly while `draining`; a packet is handed to
 * the receiver once, in ring order.
 */
export function deliverOne<C extends GuestChannelIo>(c: C, inc: IncomingRing, host: HostDoorbell, now: number, receiver: GuestReceiver<C>): void {
  if (!c.draining) {
    c.draining = true;
    c.interrupt = false;
    inc.setInterruptMask(true);
  }
  const v = inc.peek();
  if (v !== null) {
    const payload = inc.payload(v);
    // The view is reused by the next peek: keep its fields before anything else reads.
    const { type, transId, flags } = v;
    inc.advance(v);
    if (inc.commit()) host.writable(c.ch);
    if (type === PacketType.completion) receiver.completion(c, transId, payload);
    else receiver.message(c, transId, (flags & PACKET_FLAG_COMPLETION_REQUESTED) !== 0, payload, now);
  } else if (inc.commit()) {
    // peek stepped over packets it cannot accept: their space is free again.
    host.writable(c.ch);
  }
  if (inc.isEmpty()) {
    c.draining = false;
    inc.setInterruptMask(false);
    if (!inc.isEmpty()) c.interrupt = true;
  }
}

/**
 * Names each packet the guest-bound ring steps over (unknown type or flag) in the trace,
 * as the Linux drivers log one ("unhandled packet type") and go on.
 */
export function traceUnacceptable(inc: IncomingRing, ch: number, sink: TraceSink): void {
  inc.onUnacceptable = (offset, type, flags) => sink.emit({ side: 'guest', ev: 'ring.format', ch, dir: 'h2g', offset, type, flags });
}
