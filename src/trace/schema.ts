// Trace events, schema version 1 (TRACE-SCHEMA.md).
//
// JSON Lines, one event per line. Both drivers, the bench itself and the emulator write
// it. New events and fields may be added; the ones here may not change meaning.
//
// Every event has v, seq (strictly increasing within one file), src, side and ev;
// channel events have ch. Packet events carry tx (unique per channel and direction,
// stable across save, restore and migration) and dir.

import type { TxId } from '../vmbus/tx-id.ts';

export const TRACE_VERSION = 1;

export type Side = 'host' | 'guest' | 'bench';
export type Dir = 'g2h' | 'h2g';

interface Base {
  v: 1;
  seq: number;
  /** `emulator`, `hyperv` or another backend name */
  src: string;
  side: Side;
}

interface BenchBase extends Base {
  side: 'bench';
}
interface ChannelBase extends Base {
  side: 'host' | 'guest';
  ch: number;
}
interface PacketBase extends ChannelBase {
  tx: TxId;
  dir: Dir;
}

export type ScenarioEvent = BenchBase & { ev: 'scenario.begin' | 'scenario.end'; name: string; seed: number };
export type VmEvent = BenchBase & {
  ev:
    | 'vm.save.begin'
    | 'vm.save.end'
    | 'vm.restore.begin'
    | 'vm.restore.end'
    | 'vm.pause'
    | 'vm.resume';
};
export type VmMigrateEvent = BenchBase & { ev: 'vm.migrate.begin' | 'vm.migrate.end'; from: string; to: string };
export type VmCheckpointEvent = BenchBase & {
  ev: 'vm.checkpoint.begin' | 'vm.checkpoint.end' | 'vm.checkpoint.apply.begin' | 'vm.checkpoint.apply.end';
  name: string;
};
/**
 * A cut the bench wrote between two VM operations, with no VM operation of its own: its
 * `at` gives each driver file's last seq at that moment, so a merge puts what each file
 * wrote after it after it (a real job writes one right after a Linux guest's control
 * write failed with EAGAIN, TRACE-SCHEMA.md "Merging a run's files"). The model writes
 * none; the checker takes it as an order only.
 */
export type BenchMarkEvent = BenchBase & { ev: 'bench.mark' };
export type ChannelStateEvent = ChannelBase & { ev: 'ch.state'; state: string };
export type PktSend = PacketBase & { ev: 'pkt.send'; len: number; digest: string; wantCompletion: boolean };
export type PktQueued = PacketBase & { ev: 'pkt.queued' };
export type PktRecv = PacketBase & { ev: 'pkt.recv'; len: number; digest: string };
export type PktComplete = PacketBase & { ev: 'pkt.complete'; status: string; len: number; digest: string };
export type PktCompletion = PacketBase & { ev: 'pkt.completion'; status: string; digest: string };
export type PktSave = PacketBase & { ev: 'pkt.save'; libLen: number; saveLen: number; saveDigest: string };
export type PktRestore = PacketBase & { ev: 'pkt.restore'; saveDigest: string };
export type PktFail = PacketBase & { ev: 'pkt.fail'; status: string };
/**
 * The sender gave up sending a packet (a Linux guest driver whose ring stayed full for its
 * send timeout): the packet never entered the ring, and its `tx` was not used (the next
 * send may take it). `len` and `digest` are the packet's, as its `pkt.send` would have had.
 */
export type PktTimeout = PacketBase & { ev: 'pkt.timeout'; len: number; digest: string };
/**
 * The reader of ring `dir` stepped over a well-framed packet it cannot accept (a type
 * outside 6, 7, 9, 0xB or a flag other than bit 0; vmbus/ring.ts): where it started in
 * the ring's data area, its type and flags. A correct peer never writes one; the checker
 * names it as divergence class ring-format.
 */
export type RingFormat = ChannelBase & { ev: 'ring.format'; dir: Dir; offset: number; type: number; flags: number };
/**
 * The writing side's driver broke a KMCL rule (vmbus/kmcl-rules.ts), reported as Driver
 * Verifier reports one: `rule` is the rule's name (e.g. send-after-suspend), `call` the
 * KMCL function called (its C name), `packet` the VMBPACKET's id (0: the call is about
 * no packet), `message` what was wrong. The call stops there (a real system bugchecks).
 * The checker names it as divergence class kmcl-misuse.
 */
export type KmclViolationEvent = ChannelBase & { ev: 'kmcl.violation'; rule: string; call: string; packet: number; message: string };
/**
 * Rescind and re-offer (TRACE-SCHEMA.md, "Rescind and re-offer"). `ch.rescind`: the host
 * revoked the channel's current instance (a rescind racing traffic, a FORCE_NEW_CHANNEL
 * channel after a restore, or a restore that failed); what was in flight on it ends there.
 * `ch.offer`: the host offered the channel anew, a new instance the guest opens.
 */
export type ChannelRescindEvent = ChannelBase & { side: 'host'; ev: 'ch.rescind' | 'ch.offer' };
/**
 * The sender's transaction ended without a completion because its channel was rescinded:
 * `status` is what the sender's driver was told (the host: KMCL's cancel status; the
 * sample guest: STATUS_CANCELLED, lab/drivers/PROTOCOL.md "Rescind").
 */
export type PktCancel = PacketBase & { ev: 'pkt.cancel'; status: string };

export type TraceEvent =
  | ScenarioEvent
  | VmEvent
  | VmMigrateEvent
  | VmCheckpointEvent
  | BenchMarkEvent
  | ChannelStateEvent
  | PktSend
  | PktQueued
  | PktRecv
  | PktComplete
  | PktCompletion
  | PktSave
  | PktRestore
  | PktFail
  | PktTimeout
  | RingFormat
  | KmclViolationEvent
  | ChannelRescindEvent
  | PktCancel;

export type EventName = TraceEvent['ev'];
export type PacketEvent = PktSend | PktQueued | PktRecv | PktComplete | PktCompletion | PktSave | PktRestore | PktFail | PktCancel | PktTimeout;

/** Distributes Omit over the union, so each member keeps its own fields. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event before the writer stamps it with v, seq and src. */
export type EventBody = DistributiveOmit<TraceEvent, 'v' | 'seq' | 'src'>;

/** Which side writes each event, as the schema table says. */
export const EVENT_SIDES: Readonly<Record<EventName, readonly Side[]>> = {
  'scenario.begin': ['bench'],
  'scenario.end': ['bench'],
  'vm.save.begin': ['bench'],
  'vm.save.end': ['bench'],
  'vm.restore.begin': ['bench'],
  'vm.restore.end': ['bench'],
  'vm.migrate.begin': ['bench'],
  'vm.migrate.end': ['bench'],
  'vm.pause': ['bench'],
  'vm.resume': ['bench'],
  'vm.checkpoint.begin': ['bench'],
  'vm.checkpoint.end': ['bench'],
  'vm.checkpoint.apply.begin': ['bench'],
  'vm.checkpoint.apply.end': ['bench'],
  'bench.mark': ['bench'],
  'ch.state': ['host', 'guest'],
  'pkt.send': ['host', 'guest'],
  'pkt.queued': ['host', 'guest'],
  'pkt.recv': ['host', 'guest'],
  'pkt.complete': ['host', 'guest'],
  'pkt.completion': ['host', 'guest'],
  'pkt.save': ['host'],
  'pkt.restore': ['host'],
  'pkt.fail': ['host', 'guest'],
  'ring.format': ['host', 'guest'],
  'kmcl.violation': ['host', 'guest'],
  'ch.rescind': ['host'],
  'ch.offer': ['host'],
  'pkt.cancel': ['host', 'guest'],
  'pkt.timeout': ['host', 'guest'],
};
