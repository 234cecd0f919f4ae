// The review's defects D1-D8 in the sample C drivers (lab/drivers), each shown caught by
// a Driver-Verifier-style check of the kernel shim while the driver's own C code runs
// on the emulator.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DriverViolation } from '../../../src/devices/wasm/violations.ts';
import { makeHarness } from './support/vsp-harness.ts';

const unfixed = (file: string) => fileURLToPath(new URL(`../../fixtures/drivers-unfixed/${file}`, import.meta.url));

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

function violationOf(fn: () => void): DriverViolation {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverViolation) return e;
    throw e;
  }
  throw new Error('expected a driver violation, the driver ran clean');
}

describe.skipIf(!toolchain)('D1: PASSIVE-only calls from an I/O queue that may run at DISPATCH_LEVEL', () => {
  it('the unfixed VSP\'s control queue calls VmbChannelAllocate at DISPATCH_LEVEL', () => {
    const h = makeHarness({ replace: { 'vsp/vsp-driver.c': unfixed('d1-vsp-driver.c') } });
    const v = violationOf(() => h.open());
    expect(v.report.rule).toBe('irql.passive-only');
    expect(v.report.call).toBe('VmbChannelAllocate');
    expect(v.report.site).toContain('VspEvtIoDeviceControl');
  });

  it('fixed (a PASSIVE execution level for the queue): every control command runs clean', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 3 64 0 ch=42');
    h.pump();
    h.vsp.run('close ch=42');
    h.vsp.unload();
    expect(h.events('pkt.completion')).toHaveLength(3);
  });
});

describe.skipIf(!toolchain)('D2: sends after Suspend (VSP)', () => {
  it('the VSP sends a HostTransaction on a channel it paused for a save', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('save ch=42');
    const v = violationOf(() => h.vsp.command('transact 1 64 0 ch=42'));
    expect(v.report.rule).toBe('kmcl.send-after-suspend');
    expect(v.report.call).toBe('VmbPacketSend');
    expect(v.report.site).toContain('VspSendMany');
  });
});

describe.skipIf(!toolchain)('D3: leaks on a failed restore', () => {
  it('the VSP cleans up the channel with the packets it already restored still allocated', () => {
    const h = makeHarness({ faults: ['second-packet-restore-fails'] });
    h.open();
    h.vsp.run('transact 2 64 0 ch=42');
    h.vsp.run('save ch=42');
    const v = violationOf(() => h.vsp.command('restore ch=42'));
    expect(v.report.rule).toBe('kmcl.packet-leak');
    expect(v.report.call).toBe('VmbChannelCleanup');
    expect(v.report.site).toContain('VspChannelRestore');
  });
});

describe.skipIf(!toolchain)('D8: a save loop that can spin for ever', () => {
  it('the VSP calls SaveContinue again and again when STATUS_BUFFER_OVERFLOW comes back with nothing written', () => {
    const h = makeHarness({ faults: ['save-continue-no-progress'], hangCalls: 20_000 });
    h.open();
    h.vsp.run('transact 1 64 0 ch=42');
    const v = violationOf(() => h.vsp.command('save ch=42'));
    expect(v.report.rule).toBe('hang');
    expect(v.report.call).toBe('VmbChannelSaveContinue');
    expect(v.report.site).toContain('VspChannelSave');
  });
});
