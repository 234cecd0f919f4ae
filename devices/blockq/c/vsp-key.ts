// blockq's C VSP's state for explore's state key (src/scenario/run-key.ts): what decides
// what the VSP does next, read from its structures in linear memory (vsp.h), without
// addresses or handle values. The kernel shim's part is keyed beside it
// (src/devices/wasm/shim-key.ts, which says why raw memory cannot be compared).
//
// Per BQ_CHANNEL, in the device's list order: its number, instance and ring pages; its
// KMCL channel object (absent, or the shim's record and the emulator's channel); its
// spin lock; the outstanding Requests in order (the incoming packet, tx, due time, the
// reply it will send); the deferred txs; the messages in flight (their packet object,
// saved fields, ring bytes); the Abandoning, Discarding, Unoffered and Suspended flags;
// the rescind's and guest close's Retiring, Rescinded and Unopened flags and the Events a
// failed restore abandoned (their saved fields: the rescind traces their cancels);
// NextTx; its answer timer; and the counters the bench or the VSP act on (Outstanding,
// which the bench's nextDue reads; InFlight and InFlightBytes, the queue inference).
//
// Left out, and why:
//  - SaveBlob and SaveBlobSize: read only by the export after a save and by `restore`
//    after an import, and a save and an import each replace them first (host-vsp.ts
//    issues no other order);
//  - the other counters: statistics the bench does not read and the VSP never branches on;
//  - a BQ_TX's Message: read once, by VmbPacketSend, which copies it; a restore rebuilds
//    it from the saved fields (keyed);
//  - Device and Vc back-pointers, list links: structure, walked rather than keyed;
//  - Disabling: TRUE only inside the VSP's own VmbChannelDisable, never between steps.
//
// Invariant: LAYOUT is wasm32's layout of vsp.h; test/devices/blockq/c-vsp-key.test.ts
// compiles a _Static_assert of every offset against the header, so a changed struct
// fails there.

import type { BlockqCVsp } from './vsp.ts';
import { eachListEntry, keyU64, keyWdfObject, keyWindowsShims, neverEqual, type KeyWriter } from '../../../src/devices/wasm/shim-key.ts';
import type { PacketRec } from '../../../src/devices/wasm/kmcl-shim.ts';
import type { Linear } from '../../../src/devices/wasm/linear.ts';

/** Field offsets (bytes) in wasm32, as clang lays out devices/blockq/c/vsp.h. */
export const LAYOUT = {
  device: { Channels: 244 },
  channel: {
    Link: 0, Channel: 12, Ch: 16, Instance: 20, RingPages: 36, Lock: 40, Outstanding: 44, Deferred: 52, InFlight: 60,
    AnswerTimer: 68, Abandoning: 72, Discarding: 73, Unoffered: 74, Suspended: 75, NextTx: 80,
    'Counters.Outstanding': 120, 'Counters.InFlight': 192, 'Counters.InFlightBytes': 200,
    Retiring: 217, Rescinded: 218, Unopened: 219, Abandoned: 220,
  },
  request: { Link: 0, Packet: 8, Tx: 16, Due: 24, ReplyLength: 32, Status: 36, Reply: 40 },
  deferred: { Link: 0, Tx: 8 },
  tx: { Link: 0, Packet: 12, 'Event.tx': 16, 'Event.type': 24, 'Event.length': 28, 'Event.hold': 32, 'Event.digest': 40, RingBytes: 48, Message: 52 },
} as const;

/** BQ_REPLY_MAX (blockq-protocol.h): a reply is never longer. */
const REPLY_MAX = 92;

/** Keys the C VSP driver (all its channels) and the shim beneath it. */
export function keyBlockqCVsp(k: KeyWriter, v: BlockqCVsp): void {
  keyWindowsShims(k, v);
  const dev = v.wdf.deviceContext();
  if (dev === 0) {
    k.num(-1);
    return;
  }
  k.num(eachListEntry(v.rt.mem, dev + LAYOUT.device.Channels, (vc) => keyChannel(k, v, vc - LAYOUT.channel.Link)));
}

/** The BQ_TX a packet's context points at, by its saved fields (the identity of a message). */
export function keyTxContext(k: KeyWriter, v: BlockqCVsp, pr: PacketRec | null): void {
  if (pr === null) {
    k.num(-1);
    return;
  }
  k.num(pr.freed ? 1 : 0);
  k.num(pr.routine);
  if (pr.pointer === 0) k.num(0);
  else keyEvent(k, v.rt.mem, pr.pointer);
}

function keyChannel(k: KeyWriter, v: BlockqCVsp, vc: number): void {
  const mem = v.rt.mem;
  const c = LAYOUT.channel;
  const now = v.rt.opts.now();
  k.num(mem.u32(vc + c.Ch));
  for (let i = 0; i < 16; i += 4) k.num(mem.u32(vc + c.Instance + i));
  k.num(mem.u32(vc + c.RingPages));
  const handle = mem.u32(vc + c.Channel);
  const rec = handle === 0 ? undefined : v.kmcl.channels.get(handle);
  if (handle === 0) k.num(0);
  else if (!rec) k.num(neverEqual()); // a handle the shim does not know: never equal
  else {
    k.num(1);
    k.num(rec.pointer === vc ? 1 : 0);
    k.num(rec.pausedByDriver ? 1 : 0);
    k.num(rec.inStateCallback ? 1 : 0);
    // Function table indices: fixed for the module, so they compare as they are.
    for (const f of [rec.processPacket, rec.processingComplete, rec.save, rec.restore, rec.states.opened, rec.states.closed, rec.states.suspend, rec.states.started, rec.states.postStarted]) k.num(f);
    k.value(rec.ch);
  }
  keyWdfObject(k, v.wdf, mem.u32(vc + c.Lock), now);
  const r = LAYOUT.request;
  k.num(eachListEntry(mem, vc + c.Outstanding, (at) => {
    const pkt = v.kmcl.completionOf(mem.u32(at + r.Packet));
    if (pkt === undefined) k.num(neverEqual());
    else k.value(pkt);
    keyU64(k, mem, at + r.Tx);
    keyU64(k, mem, at + r.Due);
    const len = Math.min(mem.u32(at + r.ReplyLength), REPLY_MAX);
    k.num(len);
    k.num(mem.u32(at + r.Status));
    for (let i = 0; i < len; i++) k.num(mem.bytes[at + r.Reply + i]!);
  }));
  k.num(eachListEntry(mem, vc + c.Deferred, (d) => keyU64(k, mem, d + LAYOUT.deferred.Tx)));
  k.num(eachListEntry(mem, vc + c.InFlight, (t) => {
    const pr = v.kmcl.packetOf(mem.u32(t + LAYOUT.tx.Packet));
    if (pr === undefined) k.num(neverEqual());
    else {
      k.num(pr.freed ? 1 : 0);
      k.num(pr.pointer === t ? 1 : 0);
      k.num(pr.routine);
      k.str(pr.p.state);
      k.value(pr.p.transId);
    }
    keyEvent(k, mem, t);
    k.num(mem.u32(t + LAYOUT.tx.RingBytes));
  }));
  for (const f of [c.Abandoning, c.Discarding, c.Unoffered, c.Suspended, c.Retiring, c.Rescinded, c.Unopened]) k.num(mem.bytes[vc + f]!);
  k.num(eachListEntry(mem, vc + c.Abandoned, (t) => keyEvent(k, mem, t)));
  keyU64(k, mem, vc + c.NextTx);
  keyWdfObject(k, v.wdf, mem.u32(vc + c.AnswerTimer), now);
  keyU64(k, mem, vc + c['Counters.Outstanding']);
  keyU64(k, mem, vc + c['Counters.InFlight']);
  keyU64(k, mem, vc + c['Counters.InFlightBytes']);
}

/** A BQ_TX's saved fields (struct bq_event; its padding is whatever the stack held). */
function keyEvent(k: KeyWriter, mem: Linear, t: number): void {
  const x = LAYOUT.tx;
  keyU64(k, mem, t + x['Event.tx']);
  k.num(mem.u32(t + x['Event.type']) & 0xffff);
  k.num(mem.u32(t + x['Event.length']));
  k.num(mem.u32(t + x['Event.hold']));
  keyU64(k, mem, t + x['Event.digest']);
}
