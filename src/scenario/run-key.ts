// The key of one run's state (state-key.ts does the generic walk), made of what the
// executor hands over (runKey), with:
//
//  - fast keyers for the large collections (a channel's library queue and the packets
//    awaiting completion, the guest driver's queue, awaiting table and holds), which
//    hold one record per transaction in flight. Walking those field by field, by name,
//    cost more than the save and restore explore checks; these key the same fields in
//    a fixed order. Each record kind's fields are listed beside its keyer, and a test
//    (test/scenario/run-key.test.ts) fails when a real record has a field the list
//    lacks, so a field added later cannot silently drop out of the key;
//  - the reader-wake rules: two differences a restore makes on purpose that change
//    nothing the run does next (see readerWake).

import type { TxId } from '../vmbus/tx-id.ts';
import type { Channel } from '../vmbus/channel.ts';
import type { QueuedSend } from '../vmbus/channel-types.ts';
import type { VmbPacket } from '../vmbus/packet.ts';
import type { Fifo } from '../vmbus/fifo.ts';
import type { TransactionTable } from '../vmbus/trans-table.ts';
import { ControlWord } from '../vmbus/ring-layout.ts';
import type { RingMemory } from '../vmbus/ring.ts';
import type { GuestChannelState } from '../../devices/sample/guest.ts';
import type { SavedHostTx } from '../../devices/sample/save-record.ts';
import { StateKey } from './state-key.ts';
import type { EmulatedHost } from './host.ts';
import type { SampleGuest } from '../../devices/sample/guest.ts';
import type { GuestMemory } from '../vmbus/partition.ts';

type QueuedWrite = GuestChannelState['queue']['items'][number];
type HeldTransaction = GuestChannelState['held']['items'][number];

/** A VmbPacket's fields that are keyed; `id` and `channel` are not (state-key.ts). */
export const PACKET_FIELDS = ['state', 'transId', 'wantCompletion', 'payload', 'pointer', 'completionRoutine'] as const;
/** The sample VSP's per-transaction context (VmbPacketGetPointer). */
export const HOST_TX_FIELDS = ['tx', 'type', 'length', 'hold', 'digestHi', 'digestLo'] as const;
export const QUEUED_WRITE_FIELDS = ['flags', 'type', 'transId', 'payload'] as const;
export const HELD_TRANSACTION_FIELDS = ['transId', 'tx', 'due', 'response', 'status'] as const;

function keyPacket(k: StateKey, p: VmbPacket): void {
  k.str(p.state);
  k.tx(p.transId);
  k.num(p.wantCompletion ? 1 : 0);
  if (p.payload === null) k.num(-1);
  else k.dataRef(p.payload);
  keyPointer(k, p.pointer);
  k.num(p.completionRoutine === null ? 0 : 1);
}

function keyPointer(k: StateKey, ptr: unknown): void {
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

/** A FIFO (vmbus/fifo.ts) as what is still in it, each item by `item`. */
function keyFifo<T>(k: StateKey, q: Fifo<T>, item: (k: StateKey, x: T) => void): void {
  k.num(q.items.length - q.head);
  for (let i = q.head; i < q.items.length; i++) item(k, q.items[i]!);
}

function keySend(k: StateKey, e: QueuedSend): void {
  if (e.kind === 'packet') keyPacket(k, e.packet);
  else {
    k.num(-2);
    k.tx(e.transId);
    k.dataRef(e.payload);
  }
}

// Tables and Maps are walked with forEach: for-of makes a [key, value] array per entry.
function keyAwaiting(k: StateKey, m: TransactionTable<VmbPacket>): void {
  k.num(m.size);
  m.forEach((p, transId) => {
    k.tx(transId);
    keyPacket(k, p);
  });
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

/** The fast keyers for one run's large collections, by the collection object. */
function collectionKeyers(
  hostChannels: Iterable<Channel>,
  guestChannels: Iterable<GuestChannelState>,
): Map<object, (k: StateKey) => void> {
  const out = new Map<object, (k: StateKey) => void>();
  for (const c of hostChannels) {
    out.set(c.queue, (k) => keyFifo(k, c.queue, keySend));
    out.set(c.awaiting, (k) => keyAwaiting(k, c.awaiting));
    // Packets not yet freed, by id: ids are not state (a restore allocates new ones), and
    // the packets themselves are keyed where they wait (queue, awaiting); their count is.
    out.set(c.livePackets, (k) => k.num(c.livePackets.size));
  }
  for (const c of guestChannels) {
    out.set(c.queue, (k) => keyFifo(k, c.queue, keyGuestWrite));
    out.set(c.held, (k) => keyFifo(k, c.held, keyGuestHeld));
    out.set(c.awaiting, (k) => keyNumberMap(k, c.awaiting));
  }
  return out;
}

/**
 * How a ring's reader waits, where a restore changes it on purpose without changing
 * what the reader does next; null where the fields must be keyed as they are.
 *  - idle: its ring is empty, it is not draining and has not masked interrupts. The
 *    writer signals the next empty -> non-empty change (ring.ts, commit), so whether
 *    `interrupt` is set already makes no difference. A restore sets it (look once).
 *  - woken: its ring holds packets and it is draining or was signalled. Its next step
 *    is a delivery either way, which starts (or goes on with) a drain. A restore ends
 *    a drain and sets `interrupt` instead.
 */
function readerWake(incoming: RingMemory, draining: boolean, interrupt: boolean): 'idle' | 'woken' | null {
  const empty = incoming.index(ControlWord.readIndex) === incoming.index(ControlWord.writeIndex);
  if (empty && !draining && incoming.load(ControlWord.interruptMask) === 0) return 'idle';
  if (!empty && (draining || interrupt)) return 'woken';
  return null;
}

/** The parts of a run its key is made of (Execution.stateKey hands them over). */
export interface RunParts {
  /** the bench's own state: clock, step count, VM state, hang, schedule, host-side tx numbering, a saved blob, fired faults */
  bench: Record<string, unknown>;
  checkpoints: ReadonlyMap<string, Uint8Array>;
  /** explore's own checkpoint, and whether the scenario uses that name too */
  exploreCheckpoint: string;
  scenarioUsesExploreCheckpoint: boolean;
  memory: GuestMemory;
  guest: SampleGuest;
  host: EmulatedHost | null;
}

/**
 * Everything that decides how a run goes on: the bench's own state, the checkpoints it
 * holds, guest memory, the guest driver and the host objects. Left out: the host's name
 * (it only names hosts in migration events), the count of migrations (dump labels), and
 * explore's own checkpoint unless the scenario uses that name too. `transient`: the key
 * is compared before the run goes on, so guest memory is keyed by reference; `into`: a
 * key no longer needed, to build this one in.
 */
export function runKey(
  run: RunParts,
  opts: { explain: boolean; transient: boolean; into: StateKey | undefined; sizeHint: number },
): StateKey {
  const hostChannels = [...(run.host?.vsps.values() ?? [])].map((v) => v.channel);
  const keyOpts = {
    explain: opts.explain,
    sizeHint: opts.sizeHint,
    overrides: readerWakeKeys(run),
    custom: collectionKeyers(hostChannels, run.guest.state.channels),
  };
  const k = opts.into ? opts.into.reuse(keyOpts) : new StateKey(keyOpts);
  k.value(run.bench);
  for (const [name, blob] of run.checkpoints) {
    if (name === run.exploreCheckpoint && !run.scenarioUsesExploreCheckpoint) continue;
    k.value(name);
    // Only explore's own checkpoint can be overwritten by an operation it injects.
    if (run.scenarioUsesExploreCheckpoint) k.data(blob);
  }
  const memory = new Uint8Array(run.memory.buffer);
  if (opts.transient) k.dataRef(memory);
  else k.data(memory);
  k.value(run.guest);
  k.value(run.host === null ? null : run.host.vsps);
  return k;
}

/** The reader-wake rules (readerWake), as field values to key instead of the real ones. */
function readerWakeKeys(run: RunParts): Map<object, Record<string, unknown>> {
  const out = new Map<object, Record<string, unknown>>();
  for (const c of run.guest.state.channels) {
    const w = readerWake(run.memory.h2g(c.ch), c.draining, c.interrupt);
    if (w) out.set(c, { interrupt: w, draining: w });
  }
  for (const [ch, v] of run.host?.vsps ?? []) {
    const c = v.channel;
    const w = readerWake(run.memory.g2h(ch), c.isDraining, c.interrupt);
    // The count of packets in a drain only feeds EvtVmbChannelProcessingComplete.
    if (w) out.set(c, c.processingComplete ? { interrupt: w, draining: w } : { interrupt: w, draining: w, batch: 0 });
  }
  return out;
}
