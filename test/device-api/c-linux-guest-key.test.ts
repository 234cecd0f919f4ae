// The C Linux guest driver's state key (src/device-api/c-linux-guest-key.ts), on the sample's driver: a driver
// revived from its own image keys equal to it (a VM save and restore changes nothing),
// while any byte of its memory but `jiffies`, and the tables beside the memory, are in
// the key.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { StateKey } from '../../src/scenario/state-key.ts';
import { CGuestLinux } from '../../src/devices/wasm/c-guest-linux.ts';
import { guestLinuxRecipe } from '../../devices/sample/c/recipes.ts';
import { keyCGuestLinux } from '../../src/device-api/c-linux-guest-key.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const CH = 7;
const INSTANCE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f00000007';

/** A driver probed for one channel, with two requests in its ring the host never reads. */
function loaded(): { drv: CGuestLinux; mem: GuestMemory; clock: { now: number } } {
  const clock = { now: 5 };
  const drv = new CGuestLinux({ recipe: guestLinuxRecipe(), now: () => clock.now, ringPages: 4, traceKib: 256 });
  const mem = new GuestMemory([{ ch: CH, g2hPages: 4, h2gPages: 4 }]);
  expect(drv.offer(CH, INSTANCE, mem.guestRings(CH), () => {})).toBe(0);
  expect(drv.control('send 2 64 0 0')).toBeGreaterThan(0);
  drv.readNew();
  return { drv, mem, clock };
}

function keyOf(drv: CGuestLinux): StateKey {
  const k = new StateKey();
  keyCGuestLinux(k, drv);
  return k;
}

describe.skipIf(!toolchain)('the C Linux guest driver\'s state key', () => {
  it('a driver revived from its image (a VM save and restore) keys equal to the one it was taken from', () => {
    const { drv, mem, clock } = loaded();
    const revived = new CGuestLinux({ recipe: guestLinuxRecipe(), now: () => clock.now, ringPages: 4, traceKib: 256 }, structuredClone(drv.image()));
    revived.bind(CH, mem.guestRings(CH), () => {});
    expect(keyOf(revived).firstDifference(keyOf(drv))).toBeNull();
    expect(keyOf(revived).equals(keyOf(drv))).toBe(true);
  });

  it('property: a changed byte of the driver\'s memory changes the key, but for jiffies', () => {
    const { drv } = loaded();
    const before = keyOf(drv);
    const bytes = drv.rt.mem.bytes;
    const j = drv.jiffiesAt;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const was = bytes[at]!;
        bytes[at] = was ^ x;
        try {
          expect(keyOf(drv).equals(before)).toBe(at >= j && at < j + 4);
        } finally {
          bytes[at] = was;
        }
      }),
      { numRuns: 200 },
    );
    // A byte of a live block (the driver's own allocations) in particular.
    const block = [...drv.rt.pool.live.values()].find((b) => b.owner === 'driver')!;
    bytes[block.at] = bytes[block.at]! ^ 1;
    expect(keyOf(drv).equals(before)).toBe(false);
  });

  it('jiffies, rewritten before every entry into the driver, is left out', () => {
    const { drv } = loaded();
    const before = keyOf(drv);
    drv.rt.mem.setU32(drv.jiffiesAt, 123456);
    expect(keyOf(drv).equals(before)).toBe(true);
  });

  it('the tables beside the memory are in the key: a raised interrupt, an allocation, a removed device', () => {
    const { drv } = loaded();
    const before = keyOf(drv);
    drv.signal(CH);
    expect(keyOf(drv).equals(before)).toBe(false);
    drv.runInterruptOf(CH);
    // (runInterruptOf entered the driver: compare from here.)
    const idle = keyOf(drv);
    const at = drv.rt.pool.alloc(16, 0x74736554, 'shim');
    expect(keyOf(drv).equals(idle)).toBe(false);
    drv.rt.pool.free(at, 0x74736554, 'test');
    const freed = keyOf(drv);
    drv.remove(CH);
    expect(keyOf(drv).equals(freed)).toBe(false);
  });
});
