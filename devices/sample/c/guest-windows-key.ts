// The C Windows guest driver's state for explore's state key (src/scenario/run-key.ts),
// `devices: c-windows`. The guest's state is guest memory: a VM save copies the driver
// whole (CGuestWindows.image) and a restore puts that copy back, so the key is that
// image, read in place:
//  - the driver's linear memory, as the image's runs of pages (shim-key.ts keyMemoryRuns);
//  - the pool's tables (live blocks, quarantine ring, spare lists, top) and the handle
//    counters;
//  - the WDF shim's objects (device, queue, timers with their due times, work items,
//    spin locks, contexts, registry values) and the KMCL shim's client channels, packets
//    and incoming packets with the client Channel objects' state: everything
//    CGuestWindowsImage holds.
//
// Left out, and why (as for the C Linux guest, src/device-api/c-linux-guest-key.ts):
//  - a live block's allocation site and the pool's count of allocations: for leak
//    reports and statistics, nothing decides on them;
//  - the client Channel's counters and packet numbers (state-key.ts IGNORED_FIELDS);
//  - the channel's rings and doorbell: guest memory (keyed once, by the run) and code.
// Unlike the Linux module, nothing in the driver's memory is the current time: the
// driver asks KeQueryInterruptTime (an import) and keeps only due times, which are state.
// The adapter's own fields (the guest's clock offset, the bench's trace read offset,
// whether PnP bound the device) are keyed with the guest's state object, as plain fields.
//
// Invariant: two drivers with equal keys, between entries, do the same on the same calls
// (a revived image has the key of the driver it was taken from:
// test/devices/sample/c/guest-windows-key.test.ts).

import type { StateKey } from '../../../src/scenario/state-key.ts';
import type { CGuestWindows } from './guest-windows.ts';
import { keyMemoryRuns, keyRuntimeTables } from '../../../src/devices/wasm/shim-key.ts';
import { kmclClientImage } from '../../../src/devices/wasm/kmcl-client-image.ts';

/** Keys the C Windows guest driver: its memory and every table beside it. */
export function keyCGuestWindows(k: StateKey, drv: CGuestWindows): void {
  const rt = drv.rt;
  // As the image holds it: runs of pages, a page of one value as a value and a length.
  keyMemoryRuns(k, rt.mem);
  keyRuntimeTables(k, rt);
  // The WDF and KMCL parts of the image, made directly: drv.image() would copy the
  // memory once more only for them to be read.
  k.value(drv.wdf.image());
  k.value(kmclClientImage(drv.kmcl));
}
