// The C Windows guest driver's state key (devices/sample/c/guest-windows-key.ts): a driver
// revived from its own image keys equal to it (a VM save and restore changes nothing),
// while every byte of its memory, its WDF objects and its KMCL client objects are in the
// key; and explore's walk, shown every save point of a run, finds a save and restore there
// leaves the whole run's key as it was.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { StateKey } from '../../../../src/scenario/state-key.ts';
import { keyCGuestWindows } from '../../../../devices/sample/c/guest-windows-key.ts';
import type { CWindowsGuestState } from '../../../../devices/sample/c/guest-windows-vm.ts';
import { CH, revived, windowsGuestOn } from '../../wasm/support/windows-vm-guest.ts';
import { assertSaveRestoreKeepsKey } from '../../../scenario/c-guest-run.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

function keyOf(state: unknown): StateKey {
  const k = new StateKey();
  keyCGuestWindows(k, (state as CWindowsGuestState).drv);
  return k;
}

/** A Windows guest with Requests in its ring (and some in KMCL's queue) that no host reads. */
function loaded() {
  const clock = { now: 5 };
  const g = windowsGuestOn(clock, 1);
  g.guest.send(CH, 'request', 10, 600, 'hold', 4);
  return { g, clock };
}

describe.skipIf(!toolchain)('the C Windows guest driver\'s state key', () => {
  it('a driver revived from its image (a VM save and restore) keys equal to the one it was taken from', () => {
    const { g, clock } = loaded();
    const back = revived(g, g.side.snapshotGuest(g.state, clock.now), clock.now);
    expect(keyOf(back.state).firstDifference(keyOf(g.state))).toBeNull();
  });

  it('property: a changed byte of the driver\'s memory changes the key', () => {
    const { g } = loaded();
    const before = keyOf(g.state);
    const bytes = (g.state as CWindowsGuestState).drv.rt.mem.bytes;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const was = bytes[at]!;
        bytes[at] = was ^ x;
        try {
          expect(keyOf(g.state).equals(before)).toBe(false);
        } finally {
          bytes[at] = was;
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the tables beside the memory are in the key: a WDF timer\'s due time, a KMCL client channel\'s state', () => {
    const { g } = loaded();
    const drv = (g.state as CWindowsGuestState).drv;
    const before = keyOf(g.state);
    const client = drv.client()!;
    client.interrupt = !client.interrupt;
    expect(keyOf(g.state).equals(before)).toBe(false);
    client.interrupt = !client.interrupt;
    expect(keyOf(g.state).equals(before)).toBe(true);
    const timer = [...drv.wdf.liveObjects()].find((o) => o.kind === 3)! as { due: number | null };
    const due = timer.due;
    timer.due = (due ?? 0) + 1;
    expect(keyOf(g.state).equals(before)).toBe(false);
    timer.due = due;
  });

  it('explore\'s walk: at every save point a save and restore leaves the run\'s key (the guest\'s image included) as it was', () => {
    assertSaveRestoreKeepsKey('c-windows', [{ op: 'host-send', count: 3, size: 96, hold: 6 }, { op: 'guest-send', count: 2, size: 64 }, { op: 'run', ms: 12 }], 10);
  });
});
