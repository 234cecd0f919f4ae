// The guest driver's state as a saved VM holds it (the `guest` field of the saved VM).
//
// The live state (GuestState in guest.ts) keeps an object and a byte array per held
// transaction and per queued write. Serialised as it is, each of those costs a host-object
// round trip through Node's serializer (about 1.5 us per entry each way, most of a save
// with a few hundred transactions held). So the image keeps them as columns, with every
// payload in one byte arena, and the live objects are rebuilt on restore.
//
// Image versions (the saved VM's format version 2 writes image 2):
//   1  the live GuestState itself, as format version 1 wrote it (no `image` field)
//   2  GuestImageV2 below
// Both are read. Only save and restore touch these types.

import { fifo, fifoPush, type Fifo } from '../vmbus/fifo.ts';
import type { GuestChannelState, GuestState } from './guest.ts';

type Queued = GuestChannelState['queue'] extends Fifo<infer T> ? T : never;
type Held = GuestChannelState['held'] extends Fifo<infer T> ? T : never;

interface GuestChannelImageV2 {
  ch: number;
  nextTx: number;
  nextTransId: number;
  awaiting: Map<number, number>;
  writable: boolean;
  /** queued writes, oldest first: one entry per write in each column */
  queue: { flags: number[]; type: number[]; transId: number[]; len: number[] };
  /** held transactions, soonest due first */
  held: { transId: number[]; tx: number[]; due: number[]; status: number[]; len: number[] };
  /** the queued payloads, then the held responses, back to back */
  bytes: Uint8Array;
}

export interface GuestImageV2 {
  image: 2;
  channels: GuestChannelImageV2[];
  /** the guest's clock when the image was taken; holds are shifted by the time away */
  takenAt: number;
}

/** The image of `state` at time `now` (a copy: nothing in it is shared with the live state but the awaiting map, which the encoder copies at once). */
export function toGuestImage(state: GuestState, now: number): GuestImageV2 {
  return { image: 2, channels: state.channels.map(channelImage), takenAt: now };
}

function channelImage(c: GuestChannelState): GuestChannelImageV2 {
  const q = c.queue;
  const h = c.held;
  let size = 0;
  for (let i = q.head; i < q.items.length; i++) size += q.items[i]!.payload.length;
  for (let i = h.head; i < h.items.length; i++) size += h.items[i]!.response.length;
  const bytes = new Uint8Array(size);
  let at = 0;
  const queue: GuestChannelImageV2['queue'] = { flags: [], type: [], transId: [], len: [] };
  for (let i = q.head; i < q.items.length; i++) {
    const w = q.items[i]!;
    queue.flags.push(w.flags);
    queue.type.push(w.type);
    queue.transId.push(w.transId);
    queue.len.push(w.payload.length);
    bytes.set(w.payload, at);
    at += w.payload.length;
  }
  const held: GuestChannelImageV2['held'] = { transId: [], tx: [], due: [], status: [], len: [] };
  for (let i = h.head; i < h.items.length; i++) {
    const t = h.items[i]!;
    held.transId.push(t.transId);
    held.tx.push(t.tx);
    held.due.push(t.due);
    held.status.push(t.status);
    held.len.push(t.response.length);
    bytes.set(t.response, at);
    at += t.response.length;
  }
  return { ch: c.ch, nextTx: c.nextTx, nextTransId: c.nextTransId, awaiting: c.awaiting, writable: c.writable, queue, held, bytes };
}

/**
 * The live state from a decoded image (version 1 or 2) at time `now`: holds keep the time
 * they had left, and the guest looks at its rings once when it runs again. The image is
 * taken over (it came fresh out of the saved-state decoder, so nothing else holds it).
 */
export function fromGuestImage(image: unknown, now: number): GuestState {
  const state = (image as { image?: unknown }).image === 2 ? fromV2(image as GuestImageV2) : (image as GuestState);
  const shift = now - (image as { takenAt: number }).takenAt;
  for (const c of state.channels) {
    for (let i = c.held.head; i < c.held.items.length; i++) c.held.items[i]!.due += shift;
    c.interrupt = true;
    c.draining = false;
  }
  state.takenAt = 0;
  return state;
}

function fromV2(image: GuestImageV2): GuestState {
  const channels = image.channels.map((c): GuestChannelState => {
    let at = 0;
    // Payloads are views of the arena (as version 1's were views of the blob): nothing writes to them.
    const take = (len: number): Uint8Array => c.bytes.subarray(at, (at += len));
    const queue = fifo<Queued>();
    for (let i = 0; i < c.queue.len.length; i++) {
      fifoPush(queue, { flags: c.queue.flags[i]!, type: c.queue.type[i]!, transId: c.queue.transId[i]!, payload: take(c.queue.len[i]!) });
    }
    const held = fifo<Held>();
    for (let i = 0; i < c.held.len.length; i++) {
      fifoPush(held, { transId: c.held.transId[i]!, tx: c.held.tx[i]!, due: c.held.due[i]!, response: take(c.held.len[i]!), status: c.held.status[i]! });
    }
    return {
      ch: c.ch, nextTx: c.nextTx, nextTransId: c.nextTransId, queue, awaiting: c.awaiting, held, interrupt: true, draining: false, writable: c.writable,
    };
  });
  return { channels, takenAt: image.takenAt };
}
