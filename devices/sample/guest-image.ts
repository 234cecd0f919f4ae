// The guest driver's state as a saved VM holds it (the `guest` field of the saved VM).
//
// The live state (GuestState in guest.ts) keeps an object and a byte array per held
// transaction and per queued write. Serialised as it is, each of those costs a host-object
// round trip through Node's serializer (about 1.5 us per entry each way, most of a save
// with a few hundred transactions held). So the image keeps their numbers in columns and
// their bytes in one arena, and the live objects are rebuilt on restore.
//
// Image versions:
//   1  the live GuestState itself, as saved-VM format version 1 wrote it (no `image` field)
//   2  columns as arrays of numbers, the awaited requests as a Map (saved-VM version 2)
//   3  GuestImageV3 below: every number in one Float64Array (saved-VM version 3). The
//      serializer writes a typed array as raw bytes, where it wrote each element of an
//      array and each entry of a Map tagged on its own: decoding a version-2 image with a
//      few hundred entries cost four times as much.
// All three are read. Only save and restore touch these types.

import { isTxId, type TxId } from '../../src/vmbus/tx-id.ts';
import { fifo, fifoPush, type Fifo } from '../../src/vmbus/fifo.ts';
import type { GuestChannelState, GuestState } from './guest.ts';
import { RestoreError } from '../../src/vmbus/saved-state.ts';
import { checkGuestImage } from './guest-image-check.ts';

type Queued = GuestChannelState['queue'] extends Fifo<infer T> ? T : never;
type Held = GuestChannelState['held'] extends Fifo<infer T> ? T : never;

interface GuestChannelImageV2 {
  ch: number;
  nextTx: TxId;
  nextTransId: TxId;
  awaiting: Map<TxId, TxId>;
  writable: boolean;
  /** queued writes, oldest first: one entry per write in each column */
  queue: { flags: number[]; type: number[]; transId: TxId[]; len: number[] };
  /** held transactions, soonest due first */
  held: { transId: TxId[]; tx: TxId[]; due: number[]; status: number[]; len: number[] };
  /** the queued payloads, then the held responses, back to back */
  bytes: Uint8Array;
}

export interface GuestImageV2 {
  image: 2;
  channels: GuestChannelImageV2[];
  /** the guest's clock when the image was taken; holds are shifted by the time away */
  takenAt: number;
}

/** Numbers per queued write, per held transaction and per awaited request in `numbers`. */
const PER_QUEUED = 4;
const PER_HELD = 5;
const PER_AWAITED = 2;

interface GuestChannelImageV3 {
  ch: number;
  nextTx: TxId;
  nextTransId: TxId;
  writable: boolean;
  queued: number;
  held: number;
  awaited: number;
  /**
   * Back to back: per queued write (oldest first) flags, type, transId and payload length;
   * per held transaction (soonest due first) transId, tx, due, status and response
   * length; per awaited request (in the order they were sent) transId and tx.
   */
  numbers: Float64Array;
  /**
   * Ids from 2^53 on (bigints, vmbus/tx-id.ts), which a double cannot hold: each as its
   * index in `numbers` (which holds NaN there) and its value. Absent when there are none,
   * as in every image written before ids were exact, so those still read.
   */
  big?: Array<[number, bigint]>;
  /** the queued payloads, then the held responses, back to back */
  bytes: Uint8Array;
  /** the guest has the channel closed (guest.ts); absent while open, as in every image before rescinds */
  closed?: true;
}

export interface GuestImageV3 {
  image: 3;
  channels: GuestChannelImageV3[];
  /** the guest's clock when the image was taken; holds are shifted by the time away */
  takenAt: number;
}

/** The image of `state` at time `now`: a copy, nothing in it shared with the live state. */
export function toGuestImage(state: GuestState, now: number): GuestImageV3 {
  return { image: 3, channels: state.channels.map(channelImage), takenAt: now };
}

function channelImage(c: GuestChannelState): GuestChannelImageV3 {
  const q = c.queue;
  const h = c.held;
  const queued = q.items.length - q.head;
  const held = h.items.length - h.head;
  let size = 0;
  for (let i = q.head; i < q.items.length; i++) size += q.items[i]!.payload.length;
  for (let i = h.head; i < h.items.length; i++) size += h.items[i]!.response.length;
  const bytes = new Uint8Array(size);
  const numbers = new Float64Array(queued * PER_QUEUED + held * PER_HELD + c.awaiting.size * PER_AWAITED);
  let at = 0;
  let n = 0;
  let big: Array<[number, bigint]> | undefined;
  const id = (v: TxId): number => {
    if (typeof v === 'number') return v;
    (big ??= []).push([n, v]);
    return Number.NaN;
  };
  for (let i = q.head; i < q.items.length; i++) {
    const w = q.items[i]!;
    numbers[n++] = w.flags;
    numbers[n++] = w.type;
    numbers[n] = id(w.transId);
    n++;
    numbers[n++] = w.payload.length;
    bytes.set(w.payload, at);
    at += w.payload.length;
  }
  for (let i = h.head; i < h.items.length; i++) {
    const t = h.items[i]!;
    numbers[n] = id(t.transId);
    n++;
    numbers[n] = id(t.tx);
    n++;
    numbers[n++] = t.due;
    numbers[n++] = t.status;
    numbers[n++] = t.response.length;
    bytes.set(t.response, at);
    at += t.response.length;
  }
  c.awaiting.forEach((tx, transId) => {
    numbers[n] = id(transId);
    n++;
    numbers[n] = id(tx);
    n++;
  });
  const image: GuestChannelImageV3 = { ch: c.ch, nextTx: c.nextTx, nextTransId: c.nextTransId, writable: c.writable, queued, held, awaited: c.awaiting.size, numbers, bytes };
  if (big) image.big = big;
  if (c.closed) image.closed = true;
  return image;
}

/**
 * The live state from a decoded image (any version) at time `now`: holds keep the time
 * they had left, and the guest looks at its rings once when it runs again. The image is
 * taken over (it came fresh out of the saved-state decoder, so nothing else holds it).
 */
export function fromGuestImage(image: unknown, now: number): GuestState {
  // Every field first: nothing is built from an image that is not sound (guest-image-check.ts).
  checkGuestImage(image);
  const version = (image as { image?: unknown }).image;
  const state = version === 3 ? fromV3(image as GuestImageV3) : version === 2 ? fromV2(image as GuestImageV2) : (image as GuestState);
  const shift = now - (image as { takenAt: number }).takenAt;
  for (const c of state.channels) {
    for (let i = c.held.head; i < c.held.items.length; i++) c.held.items[i]!.due += shift;
    // The guest looks at each ring once after a restore; a closed channel has none to look at.
    c.interrupt = c.closed !== true;
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

function fromV3(image: GuestImageV3): GuestState {
  const channels = image.channels.map((c): GuestChannelState => {
    const { numbers, bytes } = c;
    const wanted = c.queued * PER_QUEUED + c.held * PER_HELD + c.awaited * PER_AWAITED;
    if (!(numbers instanceof Float64Array) || !(bytes instanceof Uint8Array) || numbers.length !== wanted) {
      throw new RestoreError('bad-record', `the guest image of channel ${c.ch} does not hold the ${c.queued} queued, ${c.held} held and ${c.awaited} awaited entries it counts`);
    }
    const ids = c.big === undefined ? numbers : withBigIds(c, numbers);
    let at = 0;
    let n = 0;
    // Payloads are views of the arena (as in version 2): nothing writes to them.
    const take = (len: number): Uint8Array => {
      if (!(at + len <= bytes.length)) throw new RestoreError('bad-record', `the guest image of channel ${c.ch} has payloads past its ${bytes.length} bytes`);
      return bytes.subarray(at, (at += len));
    };
    const queue = fifo<Queued>();
    for (let i = 0; i < c.queued; i++, n += PER_QUEUED) {
      fifoPush(queue, { flags: numbers[n]!, type: numbers[n + 1]!, transId: ids[n + 2]!, payload: take(numbers[n + 3]!) });
    }
    const held = fifo<Held>();
    for (let i = 0; i < c.held; i++, n += PER_HELD) {
      fifoPush(held, { transId: ids[n]!, tx: ids[n + 1]!, due: numbers[n + 2]!, response: take(numbers[n + 4]!), status: numbers[n + 3]! });
    }
    const awaiting = new Map<TxId, TxId>();
    for (let i = 0; i < c.awaited; i++, n += PER_AWAITED) awaiting.set(ids[n]!, ids[n + 1]!);
    const live: GuestChannelState = { ch: c.ch, nextTx: c.nextTx, nextTransId: c.nextTransId, queue, awaiting, held, interrupt: true, draining: false, writable: c.writable };
    // Closed: nothing to look at until the guest opens a new instance.
    if (c.closed) live.closed = true;
    return live;
  });
  return { channels, takenAt: image.takenAt };
}

/** `numbers` with the image's bigint ids put back at their places; refuses ids that are not ids. */
function withBigIds(c: GuestChannelImageV3, numbers: Float64Array): TxId[] {
  const ids: TxId[] = Array.from(numbers);
  if (!Array.isArray(c.big)) throw new RestoreError('bad-record', `the guest image of channel ${c.ch} has a malformed list of 64-bit ids`);
  for (const e of c.big) {
    const [at, v] = Array.isArray(e) ? e : [];
    if (typeof at !== 'number' || !(at >= 0 && at < numbers.length) || typeof v !== 'bigint' || !isTxId(v)) {
      throw new RestoreError('bad-record', `the guest image of channel ${c.ch} has a malformed 64-bit id entry`);
    }
    ids[at] = v;
  }
  return ids;
}
