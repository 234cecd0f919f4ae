// The C Linux guest driver's state for explore's state key (src/scenario/run-key.ts),
// `devices: c-linux`, whatever the device's module. The guest's state is guest memory: a
// VM save copies the driver whole (CGuestLinux.image) and a restore puts that copy back
// byte for byte, so the key is the same image, read in place rather than copied out first:
//  - the module's linear memory, as the image's runs of pages (memory-runs.ts): bytes
//    (compared natively, never byte by byte in JS), or a value and a length;
//  - the pool's tables (live blocks, quarantine ring, spare lists, top), the handle
//    counters, and the shim's tables (channels, debugfs files, locks, mutexes, delayed
//    work, xarrays), the VMBus core's probed devices, raised interrupts and the bench's
//    open trace file: everything CGuestLinuxImage holds.
//
// Left out, and why:
//  - `jiffies` (the word the shim writes before every entry into the driver): it is set
//    to the run's clock on the next entry, whatever it held, so it only says when the
//    driver last ran: an operation that entered the driver and changed nothing else
//    (reading a debugfs file, say) need not look like a change;
//  - a live block's allocation site: names where it was allocated, for a leak report;
//  - the pool's count of allocations: a statistic nothing decides on;
//  - a channel's rings and doorbell: guest memory (keyed once, by the run) and code;
//  - the shim's printk log: text for the reader, not read by the driver or the bench.
// Every address in the tables is an address in the driver's own memory, which a
// restore puts back where it was: they compare as they are.
//
// Invariant: two drivers with equal keys, between entries, do the same on the same
// calls (what revive(image) gives has the key of the driver it was taken from:
// test/device-api/c-linux-guest-key.test.ts).

import type { StateKey } from '../scenario/state-key.ts';
import type { CGuestLinux } from '../devices/wasm/c-guest-linux.ts';
import { keyMemoryRuns, keyRuntimeTables } from '../devices/wasm/shim-key.ts';

/** Keys the C Linux guest driver: its memory (without jiffies) and every table beside it. */
export function keyCGuestLinux(k: StateKey, drv: CGuestLinux): void {
  const rt = drv.rt;
  // As the image holds it (runs of pages: shim-key.ts keyMemoryRuns), jiffies left out.
  keyMemoryRuns(k, rt.mem, drv.jiffiesAt);
  keyRuntimeTables(k, rt);
  const linux = drv.linux.image();
  k.value({ ...linux, channels: linux.channels.map((c) => [c.id, c.open ? 1 : 0, c.callback, c.context, c.scratch]) });
  k.value(drv.tables());
}
