// The sample C VSP's state for explore's state key (src/scenario/run-key.ts): what
// decides what the VSP does next, read from its structures in linear memory (vsp.h),
// without addresses or handle values. The kernel shim's part is keyed beside it
// (src/devices/wasm/shim-key.ts, which says why raw memory cannot be compared).
//
// Per VSP_CHANNEL, in the device's list order: its number, instance, loopback and
// force-new-channel flags, whether it has a VMBus handle, ring pages; its KMCL channel
// object (absent, or the shim's record of it); its spin lock; the
// held requests (the incoming packet, tx, due time, the completion it will send); the
// deferred txs; the transactions in flight (their packet object, saved record, ring
// bytes); the transactions a failed restore abandoned; the Abandoning, Discarding,
// Unoffered, Suspended, Paused, Disabling, Retiring, Rescinded and Unopened flags; NextTx;
// its hold timer; and the counters the VSP acts on (HeldNow, InFlight, InFlightBytes).
//
// What makes keys differ on purpose: a migration brings the channel into another host's
// VSP, whose hold timer starts at the import, so its 5 ms ticks fall elsewhere than the
// old timer's unless the clock is in the same phase; held requests complete on those
// ticks, so that schedule is run in full (most migrations of the bench scenarios whose
// clock has moved off a tick). The twins hold each request for its own time.
//
// Left out, and why:
//  - SaveBlob and SaveBlobSize: read only by IOCTL_SAMPLE_VSP_EXPORT after a save, and
//    by `restore` after an import; a save and an import each replace them first (the
//    bench's CHostVsp issues no other order). Keying them would make every first
//    save of a walk look like a change;
//  - the other counters: statistics for IOCTL_SAMPLE_COUNTERS, which the bench reads
//    only for held, next_tx and save_blob_bytes; nothing in the VSP branches on them;
//  - a held request's copy of the payload (the shim's buffer): the VSP has made its
//    completion already and does not read the request again;
//  - a VSP_TX's Message: read once, by VmbPacketSend, which copies it; a restore
//    rebuilds it from the saved record (whose digest is keyed);
//  - Device and Vc back-pointers, list links: structure, walked rather than keyed.
//
// Invariant: the offsets below are wasm32's layout of vsp.h; test/devices/sample/c/vsp-key.test.ts
// compiles _Static_asserts of every one against the header, so a changed struct fails there.

import type { CVsp } from './vsp.ts';
import { eachListEntry, keyU64, keyWdfObject, keyWindowsShims, neverEqual, type KeyWriter } from '../../../src/devices/wasm/shim-key.ts';
import type { PacketRec } from '../../../src/devices/wasm/kmcl-shim.ts';
import type { Linear } from '../../../src/devices/wasm/linear.ts';

/** Field offsets (bytes) in wasm32, as clang lays out lab/drivers/vsp/vsp.h. */
export const LAYOUT = {
  device: { Channels: 244 },
  channel: {
    Link: 0, Channel: 12, Ch: 16, Instance: 20, Loopback: 36, ForceNewChannel: 37, VmbusHandle: 40, RingPages: 44, Lock: 48,
    Held: 52, Deferred: 60, InFlight: 68, Abandoning: 76, Discarding: 77, Unoffered: 78, Suspended: 79,
    Paused: 80, Disabling: 81, Retiring: 82, Rescinded: 83, Unopened: 84, Abandoned: 88, NextTx: 96, HoldTimer: 104,
    'Counters.HeldNow': 144, 'Counters.InFlight': 232, 'Counters.InFlightBytes': 240,
  },
  tx: { Link: 0, Packet: 12, 'Saved.type': 16, 'Saved.tx': 24, 'Saved.length': 32, 'Saved.hold_ms': 36, 'Saved.digest': 40, RingBytes: 48, Message: 52 },
  held: { Link: 0, Packet: 8, Tx: 16, DueTime: 24, Completion: 32 },
  deferred: { Link: 0, Tx: 8 },
} as const;

/** SP_COMPLETION_SIZE (lab/drivers/common/sample-protocol.h) */
const COMPLETION_SIZE = 32;

/** Keys the C VSP driver (all its channels) and the shim beneath it. */
export function keyCVsp(k: KeyWriter, v: CVsp): void {
  keyWindowsShims(k, v);
  const mem = v.rt.mem;
  const dev = v.wdf.deviceContext();
  if (dev === 0) {
    k.num(-1);
    return;
  }
  const channels = eachListEntry(mem, dev + LAYOUT.device.Channels, (vc) => keyChannel(k, v, vc - LAYOUT.channel.Link));
  k.num(channels);
}

/** The VSP_TX a packet's context points at, as its saved record (the identity of a transaction). */
export function keyTxContext(k: KeyWriter, v: CVsp, pr: PacketRec | null): void {
  if (pr === null) {
    k.num(-1);
    return;
  }
  k.num(pr.freed ? 1 : 0);
  k.num(pr.routine);
  if (pr.pointer === 0) k.num(0);
  else keySaved(k, v.rt.mem, pr.pointer);
}

function keyChannel(k: KeyWriter, v: CVsp, vc: number): void {
  const mem = v.rt.mem;
  const c = LAYOUT.channel;
  const now = v.rt.opts.now();
  k.num(mem.u32(vc + c.Ch));
  for (let i = 0; i < 16; i += 4) k.num(mem.u32(vc + c.Instance + i));
  k.num(u8(mem, vc + c.Loopback));
  k.num(u8(mem, vc + c.ForceNewChannel));
  k.num(mem.u32(vc + c.VmbusHandle) === 0 ? 0 : 1);
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
    k.num(rec.processPacket);
    k.num(rec.processingComplete);
    k.num(rec.save);
    k.num(rec.restore);
    k.num(rec.states.opened);
    k.num(rec.states.closed);
    k.num(rec.states.suspend);
    k.num(rec.states.started);
    k.num(rec.states.postStarted);
    // The emulator's channel object itself is keyed where the run holds it: by the
    // host's CHostVsp (host-vsp.ts), with run-key.ts's keyers for its packets. Only the
    // VM's current host has live channel objects: leaving a host detaches or discards them.
  }
  keyWdfObject(k, v.wdf, mem.u32(vc + c.Lock), now);
  const held = eachListEntry(mem, vc + c.Held, (h) => {
    const pkt = v.kmcl.completionOf(mem.u32(h + LAYOUT.held.Packet));
    if (pkt === undefined) k.num(neverEqual());
    else k.value(pkt);
    keyU64(k, mem, h + LAYOUT.held.Tx);
    keyU64(k, mem, h + LAYOUT.held.DueTime);
    for (let i = 0; i < COMPLETION_SIZE; i += 4) k.num(mem.u32(h + LAYOUT.held.Completion + i));
  });
  k.num(held);
  const deferred = eachListEntry(mem, vc + c.Deferred, (d) => keyU64(k, mem, d + LAYOUT.deferred.Tx));
  k.num(deferred);
  // In flight: a set, keyed in tx order. The list's order is read only when a failed
  // restore frees every entry (VspFreeRestored, which traces nothing), and a restore
  // rebuilds it in the order KMCL restores packets, not the order they were sent.
  const txs: number[] = [];
  const inFlight = eachListEntry(mem, vc + c.InFlight, (t) => void txs.push(t));
  if (txs.length > 1) txs.sort((a, b) => txOrder(mem, a, b));
  for (const t of txs) {
    const pr = v.kmcl.packetOf(mem.u32(t + LAYOUT.tx.Packet));
    if (pr === undefined) k.num(neverEqual());
    else {
      k.num(pr.freed ? 1 : 0);
      k.num(pr.pointer === t ? 1 : 0);
      k.num(pr.routine);
      k.str(pr.p.state);
      k.value(pr.p.transId);
    }
    keySaved(k, mem, t);
    k.num(mem.u32(t + LAYOUT.tx.RingBytes));
  }
  k.num(inFlight);
  // What a failed restore abandoned (packets freed), in list order: a rescind traces their cancels in it.
  const abandoned = eachListEntry(mem, vc + c.Abandoned, (t) => {
    k.num(mem.u32(t + LAYOUT.tx.Packet) === 0 ? 0 : 1);
    keySaved(k, mem, t);
    k.num(mem.u32(t + LAYOUT.tx.RingBytes));
  });
  k.num(abandoned);
  for (const flag of FLAGS) k.num(u8(mem, vc + flag));
  keyU64(k, mem, vc + c.NextTx);
  keyWdfObject(k, v.wdf, mem.u32(vc + c.HoldTimer), now);
  keyU64(k, mem, vc + c['Counters.HeldNow']);
  keyU64(k, mem, vc + c['Counters.InFlight']);
  keyU64(k, mem, vc + c['Counters.InFlightBytes']);
}

/** A VSP_TX's saved record by its fields (its padding is whatever the stack held). */
function keySaved(k: KeyWriter, mem: Linear, t: number): void {
  const x = LAYOUT.tx;
  k.num(mem.u32(t + x['Saved.type']) & 0xffff);
  keyU64(k, mem, t + x['Saved.tx']);
  k.num(mem.u32(t + x['Saved.length']));
  k.num(mem.u32(t + x['Saved.hold_ms']));
  keyU64(k, mem, t + x['Saved.digest']);
}

/** Two VSP_TXs by their saved tx (a u64: high word, then low). */
function txOrder(mem: Linear, a: number, b: number): number {
  const at = a + LAYOUT.tx['Saved.tx'];
  const bt = b + LAYOUT.tx['Saved.tx'];
  return mem.u32(at + 4) - mem.u32(bt + 4) || mem.u32(at) - mem.u32(bt);
}

/** The VSP_CHANNEL's BOOLEAN flags keyed after its lists, in this order. */
const FLAGS = [LAYOUT.channel.Abandoning, LAYOUT.channel.Discarding, LAYOUT.channel.Unoffered, LAYOUT.channel.Suspended, LAYOUT.channel.Paused, LAYOUT.channel.Disabling, LAYOUT.channel.Retiring, LAYOUT.channel.Rescinded, LAYOUT.channel.Unopened] as const;

/** A byte, read as a reader that writes nothing (the memory's version stays: Linear.bytes would move it). */
function u8(mem: Linear, at: number): number {
  return mem.u8(at);
}
