// What the kernel shim holds of a C driver, for explore's state key (src/scenario/
// state-key.ts, run-key.ts): the part of a Windows driver's future the shim decides,
// without addresses or handle values. The driver's own structures in its linear memory
// are the device's to key (devices/sample/c/vsp-key.ts for the sample VSP): only the
// device knows their layout, and which of their fields decide anything.
//
// Why not a hash of linear memory: after a save and restore the driver has a new
// channel object, new packet objects and new pool blocks. The same state sits at other
// addresses, under other handle numbers, and the pool's quarantine holds the freed
// blocks of the old ones, so the bytes never compare equal where the behaviour does.
//
// Keyed here: every live WDF object in creation order (its kind, execution level and
// callback; a timer's next firing, see keyTimer; a work item's queued flag; a spin lock
// held), requests waiting for the queue, the KMCL objects outstanding (packet objects
// not freed, incoming packets in the driver's hands, kernel handles), the interface
// references, the IRQL, TraceLogging events waiting for a seq, the count of
// VmbPacketRestore calls where a shim fault counts them, and the bench's armed restore
// refusals with the restore callbacks each channel has had.
//
// Left out, and why it cannot change what a driver does next:
//  - addresses and handle values: names, compared only for identity;
//  - the pool's free lists and quarantine: they decide where the next block goes, and a
//    correct driver does not act on addresses. (A driver that writes after a free is
//    caught when the poison is checked; where in the run that happens can differ
//    between a walked schedule and its own run. Inferred, not proven: the pool checks
//    are Driver Verifier's, and a run that breaks one stops there.)
//  - the driver's static data (its globals, below __heap_base): fixed once the driver
//    is loaded, but for its TraceLogging seq counter, which only orders events (the
//    shim writes them in seq order and never copies the number);
//  - statistics (the runtime's call counts, `generation`).

import type { WindowsDriver } from './windows-driver.ts';
import type { WdfShim } from './wdf-shim.ts';
import type { Linear } from './linear.ts';
import type { DriverRuntime } from './runtime.ts';
import { liveRuns } from './memory-runs.ts';

/**
 * What the keyers write into: explore's StateKey (src/scenario/state-key.ts), by shape
 * (src/devices sits below src/scenario and does not import it).
 */
export interface KeyWriter {
  num(n: number): void;
  str(s: string): void;
  /** any value, by the state key's generic walk (emulator objects: channels, packets) */
  value(v: unknown): void;
  /** bytes by content, copied (the key outlives the driver's next entry) */
  data(b: Uint8Array): void;
}

const KIND_TIMER = 3;
const KIND_WORKITEM = 4;
const KIND_SPINLOCK = 5;

/**
 * A WDF timer as what decides its next firings. A timer due after `now` fires at its due
 * time. One due at or before `now` fires as soon as the bench next runs timers (runTimers
 * fires every timer due by then, a periodic one until it is due after `now`), so only its
 * period's phase is left of its due time: from then on it fires at due + k * period.
 */
export function keyTimer(k: KeyWriter, due: number | null, period: number, now: number): void {
  if (due === null) k.num(-1);
  else if (due > now || period <= 0) {
    k.num(1);
    k.num(due);
  } else {
    k.num(2);
    k.num(((due - now) % period + period) % period);
  }
  k.num(period);
}

/** The WDF object of `handle` as the driver's structure names it: kind and state, or absent. */
export function keyWdfObject(k: KeyWriter, wdf: WdfShim, handle: number, now: number): void {
  const o = handle === 0 ? undefined : wdf.objectOf(handle);
  if (!o) {
    k.num(handle === 0 ? 0 : -1);
    return;
  }
  k.num(o.kind);
  k.num(o.level);
  k.num(o.callback);
  if (o.kind === KIND_TIMER) keyTimer(k, o.due, o.period, now);
  else if (o.kind === KIND_WORKITEM) k.num(o.queued ? 1 : 0);
  else if (o.kind === KIND_SPINLOCK) k.num(o.held ? 1 : 0);
}

/** The shim's part of a Windows driver's state (see the top of the file). */
export function keyWindowsShims(k: KeyWriter, d: WindowsDriver): void {
  const now = d.rt.opts.now();
  k.num(d.rt.irql.level);
  k.num(d.rt.inDriver ? 1 : 0);
  let n = 0;
  for (const o of d.wdf.liveObjects()) {
    keyWdfObject(k, d.wdf, o.handle, now);
    n++;
  }
  k.num(n);
  k.num(d.wdf.queuedRequests);
  const out = d.kmcl.outstanding();
  k.num(out.packets);
  k.num(out.incoming);
  k.num(out.kernelHandles);
  k.num(d.kmcl.interfaceRefs);
  k.num(d.kmcl.channels.size);
  // The fault second-packet-restore-fails acts on the second call only: past it, the count no longer matters.
  k.num(d.kmcl.opts.faults?.includes('second-packet-restore-fails') ? Math.min(d.kmcl.packetRestores, 2) : 0);
  // Armed only around one restore (a scenario's `restore` with `fail`), then the count of
  // restore callbacks each channel had decides; disarmed, neither matters.
  k.num(d.kmcl.restoreRefusals.size);
  if (d.kmcl.restoreRefusals.size > 0) {
    k.value(d.kmcl.restoreRefusals);
    for (const r of d.kmcl.channels.values()) k.num(r.restorePacketCalls);
  }
  k.num(d.trace.waitingEvents);
  k.num(d.trace.registered);
}

/** No LIST_ENTRY list of a driver holds more entries than this: past it, the list is taken to be broken. */
const MAX_LIST = 1 << 22;

/** Keys of broken state: each differs from every other key, so a broken state never passes as unchanged. */
let broken = 0;

/** A key value no other key has (a broken list, a handle the shim does not know). */
export function neverEqual(): number {
  return -(++broken);
}

/**
 * Calls `f` with each entry of the LIST_ENTRY list headed at `head` in a driver's memory,
 * in order; returns their count. A list that does not come back to its head within
 * MAX_LIST entries, or leaves the memory, is broken: it is keyed as never equal and not
 * walked further.
 */
export function eachListEntry(mem: Linear, head: number, f: (entry: number) => void): number {
  let n = 0;
  // The memory's length from its view, not Linear.size (the engine's Memory.buffer getter, per entry).
  for (let e = mem.u32(head); e !== head; e = mem.u32(e)) {
    if (++n > MAX_LIST || e === 0 || e + 8 > mem.peek().length) return neverEqual();
    f(e);
  }
  return n;
}

/** A little-endian u64 of a driver's memory, as two key numbers. */
export function keyU64(k: KeyWriter, mem: Linear, at: number): void {
  k.num(mem.u32(at));
  k.num(mem.u32(at + 4));
}

/**
 * The runtime's tables beside its memory, as a C guest's image holds them: the pool's
 * live blocks (address, size, tag, owner), its quarantine ring and spare lists, its top,
 * and the handle counters. Addresses are keyed as they are: a guest's memory comes back
 * byte for byte, so its blocks do too.
 */
export function keyRuntimeTables(k: KeyWriter, rt: DriverRuntime): void {
  // Without the blocks' allocation sites (for leak reports) and the allocation count (a statistic).
  rt.pool.keyNumbers((n) => k.num(n));
  k.value(rt.handleCounters());
}

/**
 * A C guest driver's linear memory as its image holds it: runs of pages (memory-runs.ts),
 * bytes (compared natively, never byte by byte in JS) or, for pages of one value (the
 * pool's poisoned quarantine, the zero above its top), a value and a length, so that
 * megabytes of poison are compared as numbers rather than copied. The runs tile memory
 * exactly, so equal runs are equal memory. `skip`: the address of a 4-byte word left out
 * (the Linux shim's jiffies), or -1.
 */
export function keyMemoryRuns(k: KeyWriter, mem: Linear, skip = -1): void {
  const runs = liveRuns(mem);
  k.num(mem.size);
  k.num(runs.length);
  for (const r of runs) {
    k.num(r[0]);
    if (r.length === 3) {
      k.num(r[1]);
      k.num(r[2]);
      continue;
    }
    const b = r[1];
    k.num(-1);
    // (A page that is all one value but for the skipped word is a run of bytes or a fill
    // as that word has it: keys that differ there only cost a schedule run in full.)
    const off = skip - r[0];
    if (skip >= 0 && off >= 0 && off + 4 <= b.length) {
      k.data(b.subarray(0, off));
      k.data(b.subarray(off + 4));
    } else k.data(b);
  }
}
