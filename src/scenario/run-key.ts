// The key of one run's state (state-key.ts does the generic walk), made of what the
// executor hands over (runKey), with:
//
//  - fast keyers for the large collections (a channel's library queue and the packets
//    awaiting completion; the device's own, through its twins' `keyContext` and
//    `keyers`: the sample guest driver's queue, awaiting table and holds), which
//    hold one record per transaction in flight. Walking those field by field, by name,
//    cost more than the save and restore explore checks; these key the same fields in
//    a fixed order. Each record kind's fields are listed beside its keyer, and a test
//    (test/scenario/state-key.test.ts) fails when a real record has a field the list
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
import { StateKey } from './state-key.ts';
import type { EmulatedHost } from './host.ts';
import type { GuestDriver, HostVsp } from '../device-api/device-module.ts';
import type { GuestMemory } from '../vmbus/partition.ts';

/** A VmbPacket's fields that are keyed; `id` and `channel` are not (state-key.ts). */
export const PACKET_FIELDS = ['state', 'transId', 'wantCompletion', 'payload', 'pointer', 'completionRoutine'] as const;

/** A packet; its context (the VSP's pointer) by the VSP's own keyer when it has one. */
function keyPacket(k: StateKey, p: VmbPacket, keyContext: HostVsp['keyContext']): void {
  k.str(p.state);
  k.tx(p.transId);
  k.num(p.wantCompletion ? 1 : 0);
  if (p.payload === null) k.num(-1);
  else k.dataRef(p.payload);
  if (keyContext) keyContext(k, p.pointer);
  else k.value(p.pointer);
  k.num(p.completionRoutine === null ? 0 : 1);
}

/** A FIFO (vmbus/fifo.ts) as what is still in it, each item by `item`. */
export function keyFifo<T>(k: StateKey, q: Fifo<T>, item: (k: StateKey, x: T) => void): void {
  k.num(q.items.length - q.head);
  for (let i = q.head; i < q.items.length; i++) item(k, q.items[i]!);
}

function keySend(k: StateKey, e: QueuedSend, keyContext: HostVsp['keyContext']): void {
  if (e.kind === 'packet') keyPacket(k, e.packet, keyContext);
  else {
    k.num(-2);
    k.tx(e.transId);
    k.dataRef(e.payload);
  }
}

// Tables and Maps are walked with forEach: for-of makes a [key, value] array per entry.
function keyAwaiting(k: StateKey, m: TransactionTable<VmbPacket>, keyContext: HostVsp['keyContext']): void {
  k.num(m.size);
  m.forEach((p, transId) => {
    k.tx(transId);
    keyPacket(k, p, keyContext);
  });
}

/** The fast keyers for one run's large collections, by the collection object. */
function collectionKeyers(hostVsps: Iterable<HostVsp>, guest: GuestDriver): Map<object, (k: StateKey) => void> {
  const out = new Map<object, (k: StateKey) => void>();
  for (const v of hostVsps) {
    const c = v.channel;
    const keyContext = v.keyContext?.bind(v);
    out.set(c.queue, (k) => keyFifo(k, c.queue, (k2, e) => keySend(k2, e, keyContext)));
    out.set(c.awaiting, (k) => keyAwaiting(k, c.awaiting, keyContext));
    // Packets not yet freed, by id: ids are not state (a restore allocates new ones), and
    // the packets themselves are keyed where they wait (queue, awaiting); their count is.
    out.set(c.livePackets, (k) => k.num(c.livePackets.size));
    // The VSP's own keyers (a C VSP keys itself: its state is linear memory).
    v.keyers?.((object, key) => out.set(object, key));
  }
  // The device's own keyers for the guest driver's collections, where it has them.
  guest.keyers?.((collection, key) => out.set(collection, key));
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
  guest: GuestDriver;
  host: EmulatedHost | null;
  /**
   * devices: c: the C drivers whose state can decide the run's future, each by the name
   * it is keyed under, and the device's keyer for them (EmulatorDevice.keyDriver)
   */
  drivers?: { list: ReadonlyArray<readonly [name: string, driver: unknown]>; key: (k: StateKey, driver: unknown) => void } | undefined;
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
  const keyOpts = {
    explain: opts.explain,
    sizeHint: opts.sizeHint,
    overrides: readerWakeKeys(run),
    custom: collectionKeyers(run.host?.vsps.values() ?? [], run.guest),
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
  if (run.drivers) {
    k.num(run.drivers.list.length);
    for (const [name, driver] of run.drivers.list) {
      k.str(name);
      run.drivers.key(k, driver);
    }
  }
  return k;
}

/** The reader-wake rules (readerWake), as field values to key instead of the real ones. */
function readerWakeKeys(run: RunParts): Map<object, Record<string, unknown>> {
  const out = new Map<object, Record<string, unknown>>();
  for (const r of run.guest.ringReaders?.() ?? []) {
    const w = readerWake(run.memory.h2g(r.ch), r.draining, r.interrupt);
    if (w) out.set(r.holder, { interrupt: w, draining: w });
  }
  for (const [ch, v] of run.host?.vsps ?? []) {
    const c = v.channel;
    const w = readerWake(run.memory.g2h(ch), c.isDraining, c.interrupt);
    // The count of packets in a drain only feeds EvtVmbChannelProcessingComplete.
    if (w) out.set(c, c.processingComplete ? { interrupt: w, draining: w } : { interrupt: w, draining: w, batch: 0 });
  }
  return out;
}
