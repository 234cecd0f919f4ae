// A KMDF driver's framework objects as guest memory (wdf-shim-image.ts): the image of the
// C Windows guest's device, queue, timer, work item, spin locks and contexts comes back
// exactly (its armed hold timer keeps its due time on the guest's clock), and a malformed one is a
// RestoreError naming the field.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';
import { CH, revived, tables, windowsGuestOn, type WinImg } from './support/windows-vm-guest.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const TIMER = 3;

describe.skipIf(!toolchain)('a C Windows guest driver\'s WDF image', () => {
  it('holds every framework object, and a revived driver has them as they were (the armed hold timer with its due time)', () => {
    const clock = { now: 0 };
    const g = windowsGuestOn(clock);
    g.guest.send(CH, 'request', 2, 64, 'hold', 10);
    clock.now = 3;
    const img = g.side.snapshotGuest(g.state, clock.now) as WinImg;
    const kinds = img.driver.wdf.objects.map((o) => o.kind);
    // devices (the channel's, the control device), spin locks, the hold timer, the
    // re-enable work item, the control device's queue, the driver's wait lock
    for (const k of [1, 2, 3, 4, 5, 10]) expect(kinds).toContain(k);
    expect(img.driver.wdf.objects.filter((o) => o.control !== null).map((o) => [o.control, o.link])).toEqual([[{ name: '\\Device\\VmbusSampleGuest', finished: true }, '\\DosDevices\\VmbusSampleGuest']]);
    const due = img.driver.wdf.objects.find((o) => o.kind === TIMER)!.due as number;
    expect(due).toBeGreaterThan(0);
    const back = revived(g, img, clock.now + 50);
    const again = g.side.snapshotGuest(back.state, clock.now + 50) as WinImg;
    expect(tables(again)).toEqual(tables(img));
    expect(again.driver.wdf.objects.find((o) => o.kind === TIMER)!.due).toBe(due);
  });

  it('refuses a malformed image as a RestoreError naming the field', () => {
    const clock = { now: 0 };
    const g = windowsGuestOn(clock);
    const good = g.side.snapshotGuest(g.state, clock.now) as WinImg;
    const cases: Array<[string, (i: WinImg) => void, RegExp]> = [
      ['a child before its parent', (i) => void i.driver.wdf.objects.reverse(), /wdf\.objects\[0\]\.parent .* is not an earlier object/],
      ['a timer due at no time', (i) => void (i.driver.wdf.objects.find((o) => o.kind === TIMER)!.due = 'soon'), /wdf\.objects\[\d+\]\.due is not a time or null/],
      ['a device that is not there', (i) => void (i.driver.wdf.devices = [0x7fff_ffff]), /wdf\.devices is not a list of the image's objects/],
      ['a control device whose state is no record', (i) => void (i.driver.wdf.objects.find((o) => o.control !== null)!.control = 'yes'), /wdf\.objects\[\d+\]\.control is not null or \{name, finished\}/],
      ['a registry value that is no number', (i) => void (i.driver.wdf.registry = [['TraceKiB', 'lots']]), /wdf\.registry is not a list/],
      ['no wdf record', (i) => void ((i.driver as Record<string, unknown>).wdf = null), /wdf is not a record/],
    ];
    for (const [what, spoil, message] of cases) {
      const bad = structuredClone(good);
      spoil(bad);
      let err: unknown;
      try {
        g.side.reviveGuest(bad, clock.now);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(RestoreError);
      expect((err as Error).message, what).toMatch(message);
    }
  });
});
