// The C Linux guest as an emulated VM's guest (src/device-api/c-linux-guest.ts, here with the sample's module) takes every
// line it writes to the driver's control file from the device's control, the one a lab
// job uses: after the probe, the guest lines of `control.begin` in order (never a VSP
// line, never one of its own), and each traffic step as `control.command` makes it.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cLinuxGuest, type CLinuxGuestState } from '../../src/device-api/c-linux-guest.ts';
import { guestLinuxRecipe } from '../../devices/sample/c/recipes.ts';
import { sampleControl } from '../../devices/sample/control.ts';
import type { DeviceControl, GuestRings } from '../../src/device-api/device-module.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { toTxId } from '../../src/vmbus/tx-id.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** A guest over fresh rings for channels 0 and 1, and every line written to its control file. */
function guestWith(control: Pick<DeviceControl, 'command' | 'begin'>) {
  const g = cLinuxGuest({ now: () => 0, recipe: guestLinuxRecipe(), control: { channelInstance: sampleControl.channelInstance, ...control } });
  const state = g.newGuestState([0, 1], [toTxId(1), toTxId(1)]) as CLinuxGuestState;
  const written: string[] = [];
  const drv = state.drv;
  const real = drv.control.bind(drv);
  drv.control = (line: string) => {
    written.push(line);
    return real(line);
  };
  const mem = new GuestMemory([{ ch: 0, g2hPages: 4, h2gPages: 4 }, { ch: 1, g2hPages: 4, h2gPages: 4 }]);
  const rings: GuestRings = new Map([0, 1].map((ch) => [ch, mem.guestRings(ch)]));
  const guest = g.guest(state, rings, new MemorySink(), { interrupt: () => {}, writable: () => {} });
  return { guest, written };
}

describe.skipIf(!toolchain)('the C Linux guest of an emulated VM', () => {
  it('writes the sample control\'s begin line after the probe, and nothing of its own', () => {
    const { guest, written } = guestWith(sampleControl);
    guest.probe!();
    expect(written).toEqual(sampleControl.begin!.filter((b) => b.to === 'guest').map((b) => b.line));
    expect(written).toEqual(['hold auto']);
  });

  it('writes another control\'s guest begin lines in order, skips its VSP lines, and sends traffic as its command makes it', () => {
    const control = {
      command: sampleControl.command,
      begin: [{ to: 'guest' as const, line: 'hold 7' }, { to: 'vsp' as const, line: 'transact 1 64 0 ch=0' }, { to: 'guest' as const, line: 'trace-clear' }],
    };
    const { guest, written } = guestWith(control);
    guest.probe!();
    guest.send(1, 'request', 2, 64, 'hold', 5);
    expect(written).toEqual(['hold 7', 'trace-clear', sampleControl.command({ op: 'guest-send', channel: 1, count: 2, size: 64, mode: 'hold', hold: 5 }).line]);
    // None at all: the driver gets no line before the first step.
    const none = guestWith({ command: sampleControl.command });
    none.guest.probe!();
    expect(none.written).toEqual([]);
  });
});
