// Every device's C VSP on the emulator (src/device-api/c-vsp-driver.ts): the channel it
// offers is found by its number, and a channel's saved state goes out through the device's
// export IOCTL and back in through its import IOCTL, for the sample's VSP and blockq's.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { CVspDriver } from '../../src/device-api/c-vsp-driver.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { CVsp } from '../../devices/sample/c/vsp.ts';
import { sampleControl } from '../../devices/sample/control.ts';
import { BlockqCVsp } from '../../devices/blockq/c/vsp.ts';
import { channel, channelInstance, command } from '../../devices/blockq/control.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const opts = { choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 };

const CASES = [
  { name: 'the sample', driver: (): CVspDriver => new CVsp(opts), control: sampleControl },
  { name: 'blockq', driver: (): CVspDriver => new BlockqCVsp(opts), control: { channel, channelInstance, command } },
];

describe.skipIf(!toolchain)('a C VSP on the emulator', () => {
  it.each(CASES)('$name: offers channel N as its number, exports its saved state after `save`, and imports it for `restore`', ({ driver, control }) => {
    const vsp = driver();
    expect(vsp.offered(7)).toBeNull();
    vsp.run(control.channel({ op: 'open', ch: 7, instance: control.channelInstance(7), ringPages: 4, loopback: true }));
    const offered = vsp.offered(7);
    expect(offered).not.toBeNull();
    expect(offered!.config.interfaceInstance).toBe(control.channelInstance(7));
    expect(vsp.offered(8)).toBeNull();
    vsp.run(control.command({ op: 'host-send', channel: 7, count: 2, size: 64, hold: 0 }).line);
    vsp.run(control.channel({ op: 'save', ch: 7 }));
    const state = vsp.exportState(7);
    expect(state.length).toBeGreaterThan(48);
    vsp.run(control.channel({ op: 'detach', ch: 7 }));
    // Gone once given up; back, from the imported state, once restored and resumed.
    expect(vsp.offered(7)).toBeNull();
    expect(vsp.importState(state)).toBe(0);
    vsp.run(control.channel({ op: 'restore', ch: 7 }));
    vsp.run(control.channel({ op: 'resume', ch: 7 }));
    expect(vsp.offered(7)).not.toBeNull();
    expect(vsp.offered(7)).not.toBe(offered);
  });

  it.each(CASES)('$name: a state that is not one the VSP exported is refused by the import (not 0), nothing changed', ({ driver }) => {
    const vsp = driver();
    expect(vsp.importState(new Uint8Array(16))).not.toBe(0);
  });
});
