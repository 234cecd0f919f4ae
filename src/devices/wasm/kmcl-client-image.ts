// A Windows guest driver's KMCL client objects as guest memory: the shim's channel,
// packet and incoming-packet records and the emulator's client Channel objects behind
// them (src/vmbus/channel.ts), as plain data.
//
// Why: on a real VM save the guest's kernel, vmbkmcl.sys and its client channels included,
// is saved with guest memory; VMBus hands the restored guest the same rings, and the
// guest's driver sees no callback at all (it never knows it was saved). So a saved
// emulated VM carries these records beside the driver's linear memory
// (runtime-image.ts) and WDF tables (wdf-shim-image.ts), and a revived driver finds its
// VMBCHANNEL, VMBPACKET and VMBPACKETCOMPLETION handles where they were. The rings
// themselves are guest memory already (the VM image carries them): the adapter binds
// each open channel to the restored VM's rings after the revival (bindClientRings).
//
// Only client endpoints: a server channel is the host's and is saved through
// SaveBegin/SaveContinue (channel-save.ts); an image holding one is refused.
//
// Invariant: reviving an image into a fresh shim of the same driver and taking its image
// again gives an equal image (test/devices/wasm/kmcl-client-image.test.ts).

import { Channel, type ChannelConfig, type ChannelState, type ClientInternals } from '../../vmbus/channel.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import { fifoItems, fifoPush } from '../../vmbus/fifo.ts';
import type { IncomingPacket, IncomingState, PacketState, VmbPacket } from '../../vmbus/packet.ts';
import type { IncomingRing, OutgoingRing } from '../../vmbus/ring.ts';
import { RestoreError } from '../../vmbus/saved-state.ts';
import { isTxId, type TxId } from '../../vmbus/tx-id.ts';
import type { ChannelRec, IncomingRec, KmclImageTables, KmclShim, PacketRec } from './kmcl-shim.ts';

export interface ClientChannelImage {
  handle: number;
  /** the Channel's own id (VmbChannelAllocate's count) */
  id: number;
  pointer: number;
  processPacket: number;
  processingComplete: number;
  states: ChannelRec['states'];
  pausedByDriver: boolean;
  restorePacketCalls: number;
  internals: ClientInternals;
  config: ChannelConfig;
  nextTransId: TxId;
  writable: boolean;
  interrupt: boolean;
  outstanding: number;
  quota: number;
  quotaBlocked: boolean;
  failed: boolean;
  counters: Channel['counters'];
  /** the library's send queue: a packet (its VMBPACKET handle) or a completion for the host */
  queue: Array<{ packet: number } | { transId: TxId; payload: Uint8Array }>;
  /** packets in the ring awaiting their completion: [trans id, VMBPACKET handle] */
  awaiting: Array<[TxId, number]>;
  /** incoming packets back on the parse queue after DeferToPassive (their VMBPACKETCOMPLETION handles) */
  deferred: number[];
}

export interface PacketImage {
  handle: number;
  chan: number;
  id: number;
  pointer: number;
  routine: number;
  freed: boolean;
  state: PacketState;
  transId: TxId;
  wantCompletion: boolean;
  payload: Uint8Array | null;
}

export interface IncomingImage {
  handle: number;
  chan: number;
  buffer: number;
  transId: TxId;
  wantCompletion: boolean;
  payload: Uint8Array;
  state: IncomingState;
  deferrals: number;
}

export interface KmclClientImage {
  counters: KmclImageTables['counters'];
  kernelHandles: number[];
  channels: ClientChannelImage[];
  packets: PacketImage[];
  incoming: IncomingImage[];
}

/** The shim's client objects now, as plain data (a copy). Between entries into the driver only. */
export function kmclClientImage(shim: KmclShim): KmclClientImage {
  const t = shim.imageTables();
  const channels: ClientChannelImage[] = [];
  for (const r of t.channels.values()) {
    const ch = r.ch;
    if (ch.isServer) throw new Error(`VMBCHANNEL 0x${r.handle.toString(16)} is a server endpoint: a guest image holds client channels only`);
    const packetHandle = (p: VmbPacket): number => (p.pointer as PacketRec).handle;
    const incomingHandle = (p: IncomingPacket): number => {
      const inc = t.incomingOf.get(p);
      if (!inc) throw new Error(`a deferred packet of VMBCHANNEL 0x${r.handle.toString(16)} has no VMBPACKETCOMPLETION`);
      return inc.handle;
    };
    channels.push({
      handle: r.handle, id: ch.id, pointer: r.pointer, processPacket: r.processPacket, processingComplete: r.processingComplete, states: { ...r.states },
      pausedByDriver: r.pausedByDriver, restorePacketCalls: r.restorePacketCalls, internals: structuredClone(ch.clientInternals()),
      config: structuredClone(ch.config), nextTransId: ch.nextTransId, writable: ch.writable, interrupt: ch.interrupt, outstanding: ch.outstanding,
      quota: ch.quota, quotaBlocked: ch.quotaBlocked, failed: ch.failed, counters: { ...ch.counters },
      queue: fifoItems(ch.queue).map((q) => (q.kind === 'packet' ? { packet: packetHandle(q.packet) } : { transId: q.transId, payload: q.payload.slice() })),
      awaiting: ch.awaiting.values().map((p) => [p.transId, packetHandle(p)]),
      deferred: ch.deferred.map(incomingHandle),
    });
  }
  const packets: PacketImage[] = [...t.packets.values()].map((pr) => ({
    handle: pr.handle, chan: pr.chan.handle, id: pr.p.id, pointer: pr.pointer, routine: pr.routine, freed: pr.freed,
    state: pr.p.state, transId: pr.p.transId, wantCompletion: pr.p.wantCompletion, payload: pr.p.payload?.slice() ?? null,
  }));
  const incoming: IncomingImage[] = [...t.incoming.values()].map((inc) => ({
    handle: inc.handle, chan: inc.chan.handle, buffer: inc.buffer, transId: inc.pkt.transId, wantCompletion: inc.pkt.wantCompletion,
    payload: inc.pkt.payload.slice(), state: inc.pkt.state, deferrals: inc.pkt.deferrals,
  }));
  return { counters: { ...t.counters }, kernelHandles: [...t.kernelHandles], channels, packets, incoming };
}

function bad(what: string): never {
  throw new RestoreError('bad-record', `the C guest driver's image kmcl${what.startsWith('is ') ? ' ' : '.'}${what}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isU32 = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const PACKET_STATES: readonly string[] = ['idle', 'queued', 'awaiting', 'completed', 'freed'];
const INCOMING_STATES: readonly string[] = ['delivered', 'deferred', 'completed', 'failed'];
const CONN: readonly string[] = ['disabled', 'enabled', 'open', 'closed'];

function checkState(s: unknown, at: string): void {
  if (!isObject(s) || !CONN.includes(s.conn as string)) bad(`${at}.state is not a channel state`);
  if (s.conn === 'open' && s.flow !== 'paused' && s.flow !== 'active') bad(`${at}.state.flow is not paused or active`);
  if (s.conn === 'disabled' && !isBool(s.autoPauseOnEnable)) bad(`${at}.state.autoPauseOnEnable is not a boolean`);
}

/**
 * Checks a decoded image field by field, and that every handle it names is one it holds.
 * A malformed image is a RestoreError ('bad-record') naming the field, before anything
 * is built from it.
 */
export function checkKmclClientImage(img: unknown): asserts img is KmclClientImage {
  if (!isObject(img)) bad('is not a record');
  const c = img.counters;
  if (!isObject(c) || !isCount(c.nextChannelId) || !isU32(c.neededWord) || !isCount(c.packetRestores) || !Number.isSafeInteger(c.interfaceRefs)) bad('counters is not {nextChannelId, neededWord, packetRestores, interfaceRefs}');
  if (!Array.isArray(img.kernelHandles) || !img.kernelHandles.every(isU32)) bad('kernelHandles is not a list of handles');
  if (!Array.isArray(img.channels)) bad('channels is not a list');
  if (!Array.isArray(img.packets)) bad('packets is not a list');
  if (!Array.isArray(img.incoming)) bad('incoming is not a list');
  const chans = new Set<number>();
  img.channels.forEach((ch: unknown, i: number) => {
    const at = `channels[${i}]`;
    if (!isObject(ch)) bad(`${at} is not a record`);
    for (const f of ['handle', 'pointer', 'processPacket', 'processingComplete'] as const) if (!isU32(ch[f])) bad(`${at}.${f} is not a u32`);
    if (!isCount(ch.id)) bad(`${at}.id is not a channel id`);
    if (chans.has(ch.handle as number)) bad(`${at}.handle 0x${(ch.handle as number).toString(16)} is there twice`);
    chans.add(ch.handle as number);
    const s = ch.states;
    if (!isObject(s) || !['opened', 'closed', 'suspend', 'started', 'postStarted'].every((k) => isU32(s[k]))) bad(`${at}.states is not the five callback indexes`);
    for (const f of ['pausedByDriver', 'writable', 'interrupt', 'quotaBlocked', 'failed'] as const) if (!isBool(ch[f])) bad(`${at}.${f} is not a boolean`);
    for (const f of ['restorePacketCalls', 'outstanding', 'quota'] as const) if (!isCount(ch[f])) bad(`${at}.${f} is not a count`);
    if (!isTxId(ch.nextTransId)) bad(`${at}.nextTransId is not a transaction id`);
    const n = ch.internals;
    if (!isObject(n)) bad(`${at}.internals is not a record`);
    checkState(n.state, `${at}.internals`);
    for (const f of ['startRequested', 'draining', 'suspended', 'pausing'] as const) if (!isBool(n[f])) bad(`${at}.internals.${f} is not a boolean`);
    if (!isCount(n.nextPacketId) || !isCount(n.batch)) bad(`${at}.internals.nextPacketId or batch is not a count`);
    const cfg = ch.config;
    if (!isObject(cfg) || !isCount(cfg.maxPacketSize) || !isObject(cfg.ringPages) || (cfg.interfaceInstance !== null && typeof cfg.interfaceInstance !== 'string') || (cfg.interfaceType !== null && typeof cfg.interfaceType !== 'string')) bad(`${at}.config is not a channel configuration`);
    if (!isObject(ch.counters) || !Object.values(ch.counters).every(isCount)) bad(`${at}.counters is not a record of counts`);
    if (!Array.isArray(ch.queue) || !ch.queue.every((q) => isObject(q) && (isU32(q.packet) || (isTxId(q.transId) && q.payload instanceof Uint8Array)))) bad(`${at}.queue is not a list of packets and completions`);
    if (!Array.isArray(ch.awaiting) || !ch.awaiting.every((a) => Array.isArray(a) && a.length === 2 && isTxId(a[0]) && isU32(a[1]))) bad(`${at}.awaiting is not a list of [trans id, packet]`);
    if (!Array.isArray(ch.deferred) || !ch.deferred.every(isU32)) bad(`${at}.deferred is not a list of packets`);
  });
  /** packet handle -> its trans id */
  const packets = new Map<number, unknown>();
  img.packets.forEach((p: unknown, i: number) => {
    const at = `packets[${i}]`;
    if (!isObject(p)) bad(`${at} is not a record`);
    for (const f of ['handle', 'chan', 'pointer', 'routine'] as const) if (!isU32(p[f])) bad(`${at}.${f} is not a u32`);
    if (!chans.has(p.chan as number)) bad(`${at}.chan names no channel of the image`);
    if (!isCount(p.id) || !isBool(p.freed) || !isBool(p.wantCompletion) || !PACKET_STATES.includes(p.state as string) || !isTxId(p.transId)) bad(`${at} has a malformed id, freed, state, transId or wantCompletion`);
    if (p.payload !== null && !(p.payload instanceof Uint8Array)) bad(`${at}.payload is not bytes or null`);
    packets.set(p.handle as number, p.transId);
  });
  const incoming = new Set<number>();
  img.incoming.forEach((p: unknown, i: number) => {
    const at = `incoming[${i}]`;
    if (!isObject(p)) bad(`${at} is not a record`);
    for (const f of ['handle', 'chan', 'buffer'] as const) if (!isU32(p[f])) bad(`${at}.${f} is not a u32`);
    if (!chans.has(p.chan as number)) bad(`${at}.chan names no channel of the image`);
    if (!isTxId(p.transId) || !isBool(p.wantCompletion) || !(p.payload instanceof Uint8Array) || !INCOMING_STATES.includes(p.state as string) || !isCount(p.deferrals)) bad(`${at} has a malformed transId, wantCompletion, payload, state or deferrals`);
    incoming.add(p.handle as number);
  });
  img.channels.forEach((ch: ClientChannelImage, i: number) => {
    for (const q of ch.queue) if ('packet' in q && !packets.has(q.packet)) bad(`channels[${i}].queue names packet 0x${q.packet.toString(16)}, which the image does not hold`);
    for (const [tx, h] of ch.awaiting) {
      if (!packets.has(h)) bad(`channels[${i}].awaiting names packet 0x${h.toString(16)}, which the image does not hold`);
      // Invariant: a packet awaits its completion under its own trans id (an image lists it so); else the revived table would not be the image's.
      if (packets.get(h) !== tx) bad(`channels[${i}].awaiting holds packet 0x${h.toString(16)} under trans id ${String(tx)}, but the packet's is ${String(packets.get(h))}`);
    }
    for (const h of ch.deferred) if (!incoming.has(h)) bad(`channels[${i}].deferred names packet 0x${h.toString(16)}, which the image does not hold`);
  });
}

/**
 * Fills a freshly made shim (its driver instantiated, nothing run) from a checked image:
 * the channel objects come back where they were, their callbacks wired to the driver's
 * functions again. Their rings are bound afterwards (bindClientRings).
 */
export function restoreKmclClient(shim: KmclShim, img: KmclClientImage, choices: GapChoices): void {
  const t = shim.imageTables();
  shim.setImageCounters({ ...img.counters });
  for (const h of img.kernelHandles) t.kernelHandles.add(h);
  const recs = new Map<number, ChannelRec>();
  for (const c of img.channels) {
    const ch = new Channel(false, c.id, choices);
    Object.assign(ch.config, structuredClone(c.config));
    ch.setClientInternals(structuredClone(c.internals));
    ch.nextTransId = c.nextTransId;
    ch.writable = c.writable;
    ch.interrupt = c.interrupt;
    ch.outstanding = c.outstanding;
    ch.quota = c.quota;
    ch.quotaBlocked = c.quotaBlocked;
    ch.failed = c.failed;
    Object.assign(ch.counters, c.counters);
    const r: ChannelRec = {
      handle: c.handle, ch, pointer: c.pointer, processPacket: c.processPacket, processingComplete: c.processingComplete, states: { ...c.states },
      save: 0, restore: 0, pausedByDriver: c.pausedByDriver, saveOutputs: [], inStateCallback: false, cleaned: false, restorePacketCalls: c.restorePacketCalls,
    };
    recs.set(r.handle, r);
    t.channels.set(r.handle, r);
    t.byChannel.set(ch, r);
  }
  const packets = new Map<number, PacketRec>();
  for (const p of img.packets) {
    const r = recs.get(p.chan)!;
    const vp: VmbPacket = { id: p.id, channel: r.ch, state: p.state, transId: p.transId, wantCompletion: p.wantCompletion, payload: p.payload?.slice() ?? null, pointer: null, completionRoutine: null };
    const pr: PacketRec = { handle: p.handle, p: vp, chan: r, pointer: p.pointer, routine: p.routine, freed: p.freed };
    vp.pointer = pr;
    if (p.state !== 'freed') r.ch.livePackets.set(vp.id, vp);
    packets.set(pr.handle, pr);
    t.packets.set(pr.handle, pr);
  }
  const incoming = new Map<number, IncomingRec>();
  for (const p of img.incoming) {
    const r = recs.get(p.chan)!;
    const pkt: IncomingPacket = { channel: r.ch, transId: p.transId, wantCompletion: p.wantCompletion, payload: p.payload.slice(), state: p.state, deferrals: p.deferrals };
    // Between entries every packet in the driver's hands is in the table (kept); only a
    // deferred one is found again by its packet, when KMCL hands it over once more.
    const inc: IncomingRec = { handle: p.handle, pkt, chan: r, buffer: p.buffer, retired: false, kept: true };
    incoming.set(inc.handle, inc);
    t.incoming.set(inc.handle, inc);
    if (pkt.deferrals > 0) t.incomingOf.set(pkt, inc);
  }
  for (const c of img.channels) {
    const r = recs.get(c.handle)!;
    for (const q of c.queue) {
      if ('packet' in q) fifoPush(r.ch.queue, { kind: 'packet', packet: packets.get(q.packet)!.p });
      else fifoPush(r.ch.queue, { kind: 'completion', transId: q.transId, payload: q.payload.slice() });
    }
    for (const [transId, h] of c.awaiting) r.ch.awaiting.set(transId, packets.get(h)!.p);
    for (const h of c.deferred) r.ch.deferred.push(incoming.get(h)!.pkt);
    shim.rewire(r);
  }
}

/**
 * Binds a revived client channel to its rings in guest memory, as connectionOpened did,
 * without running any callback: the guest never saw its VM saved, so nothing happens in
 * its driver. Its interrupt and draining flags are as the image has them: a signal the
 * host gave before the save is in the image, and the rings (guest memory) are as they were.
 */
export function bindClientRings(ch: Channel, rings: { out: OutgoingRing; in: IncomingRing }, signalPeer: (what: 'interrupt' | 'writable') => void): void {
  const st: ChannelState = ch.state;
  ch.signalPeer = signalPeer;
  if (st.conn !== 'open') return;
  ch.outgoing = rings.out;
  ch.incoming = rings.in;
  rings.in.onUnacceptable = (offset, type, flags) => {
    ch.counters.skippedPackets++;
    ch.onUnacceptable?.(offset, type, flags);
  };
  rings.in.inclusiveThreshold = ch.choices.pendingSendThreshold === 'greater-or-equal';
}
