// Explore's state key for the sample device's per-transaction records (the generic walk is
// in src/scenario/state-key.ts; why these are keyed by hand: src/scenario/run-key.ts). Each
// record kind's fields are listed beside its keyer, and test/scenario/state-key.test.ts
// fails when a real record has a field the list lacks, so a field added later cannot
// silently drop out of the key.

import type { TxId } from '../../src/vmbus/tx-id.ts';
import type { StateKey } from '../../src/scenario/state-key.ts';
import { keyFifo } from '../../src/scenario/run-key.ts';
import type { GuestChannelState } from './guest.ts';
import type { SavedHostTx } from './save-record.ts';

type QueuedWrite = GuestChannelState['queue']['items'][number];
type HeldTransaction = GuestChannelState['held']['items'][number];

/** The VSP's per-transaction context (VmbPacketGetPointer). */
export const HOST_TX_FIELDS = ['tx', 'type', 'length', 'hold', 'digestHi', 'digestLo'] as const;
/**
 * Its fields left out of the key, each a function of the keyed ones: keying them would only
 * make equal states differ (saveDigest is null until the record is first saved or restored).
 */
export const HOST_TX_UNKEYED_FIELDS = ['saveDigest'] as const;
export const QUEUED_WRITE_FIELDS = ['flags', 'type', 'transId', 'payload'] as const;
export const HELD_TRANSACTION_FIELDS = ['transId', 'tx', 'due', 'response', 'status'] as const;

/** A host transaction's context (the VSP's packet pointer); anything else by the generic walk. */
export function keyHostTx(k: StateKey, ptr: unknown): void {
  const s = ptr as SavedHostTx | null;
  if (s !== null && typeof s === 'object' && typeof s.digestLo === 'number' && (typeof s.tx === 'number' || typeof s.tx === 'bigint')) {
    k.tx(s.tx);
    k.num(s.type);
    k.num(s.length);
    k.num(s.hold);
    k.num(s.digestHi);
    k.num(s.digestLo);
  } else {
    k.value(ptr);
  }
}

function keyGuestWrite(k: StateKey, w: QueuedWrite): void {
  k.num(w.flags);
  k.num(w.type);
  k.tx(w.transId);
  k.dataRef(w.payload);
}

function keyGuestHeld(k: StateKey, h: HeldTransaction): void {
  k.tx(h.transId);
  k.tx(h.tx);
  k.num(h.due);
  k.dataRef(h.response);
  k.num(h.status);
}

function keyNumberMap(k: StateKey, m: Map<TxId, TxId>): void {
  k.num(m.size);
  m.forEach((b, a) => {
    k.tx(a);
    k.tx(b);
  });
}

/** The fast keyers of one guest channel's collections, by the collection object. */
export function addGuestKeyers(add: (collection: object, key: (k: StateKey) => void) => void, c: GuestChannelState): void {
  add(c.queue, (k) => keyFifo(k, c.queue, keyGuestWrite));
  add(c.held, (k) => keyFifo(k, c.held, keyGuestHeld));
  add(c.awaiting, (k) => keyNumberMap(k, c.awaiting));
}
