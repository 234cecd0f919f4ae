// Which of a scenario's channel-level steps a real lab's VM job can drive, by the device's
// control and the guest's OS (src/lab/vm-steps.ts), and the plan that follows from it: a
// job that cannot run is planned not applicable with the reason, before any host is
// contacted; an emulated plan (no such rule) runs it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vmStepNotApplicable } from '../../src/lab/vm-steps.ts';
import { makePlan } from '../../src/run/engine/plan.ts';
import { loadScenarioFile } from '../../src/scenario/loader.ts';
import type { Scenario } from '../../src/scenario/model.ts';
import { deviceOf, SAMPLE_DEVICE } from '../../src/device-api/load.ts';

async function scenario(steps: string[], channels = '[{ id: 0 }, { id: 1 }]'): Promise<Scenario> {
  const f = join(mkdtempSync(join(tmpdir(), 'vm-steps-')), 's.yaml');
  writeFileSync(f, ['name: vm-steps', `channels: ${channels}`, 'steps:', ...steps.map((x) => `  - ${x}`), ''].join('\n'));
  return loadScenarioFile(f);
}

describe('vmStepNotApplicable', () => {
  it('a Linux guest of the sample runs rescind (reopened or held), guest close and guest open', async () => {
    const s = await scenario(['{ op: rescind, channel: 1 }', '{ op: rescind, channel: 1, reopen: false }', '{ op: guest-open, channel: 1 }', '{ op: guest-close, channel: 0 }', '{ op: guest-open, channel: 0 }']);
    expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
  });

  it('a Windows guest of the sample runs none of them: its driver\'s trace goes with its device; and none holds a new instance', async () => {
    expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-open, channel: 0 }']), 'windows'))
      .toMatch(/^step 1 "guest-close": the sample device names no way for a windows guest to close and reopen its channel \(control\.guestUnbind\.windowsPnp/);
    expect(vmStepNotApplicable(await scenario(['{ op: rescind, channel: 1 }']), 'windows')).toMatch(/^step 1 "rescind": a Windows guest's PnP removes the device/);
    expect(vmStepNotApplicable(await scenario(['{ op: rescind, channel: 1, reopen: false }', '{ op: guest-open, channel: 1 }']), 'windows')).toMatch(/reopen: false: a Windows guest has no way to keep/);
  });

  it('a device whose control has no Linux driver name cannot close a Linux guest\'s channel, nor hold a new instance; a plain rescind needs none', async () => {
    const control = deviceOf(SAMPLE_DEVICE).control!;
    const saved = control.guestUnbind;
    try {
      (control as { guestUnbind?: unknown }).guestUnbind = undefined;
      expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-open, channel: 0 }']), 'linux')).toMatch(/control\.guestUnbind\.linuxDriver/);
      expect(vmStepNotApplicable(await scenario(['{ op: rescind, channel: 1, reopen: false }', '{ op: guest-open, channel: 1 }']), 'linux')).toMatch(/reopen: false needs the guest to bind the new instance later/);
      expect(vmStepNotApplicable(await scenario(['{ op: rescind, channel: 1 }']), 'linux')).toBeUndefined();
    } finally {
      (control as { guestUnbind?: unknown }).guestUnbind = saved;
    }
  });

  it('no real lab drives a failing restore or forceNewChannel', async () => {
    expect(vmStepNotApplicable(await scenario(['{ op: save }', '{ op: restore, fail: [1] }']), 'linux')).toMatch(/step 2 "restore" with "fail"/);
    expect(vmStepNotApplicable(await scenario(['{ op: save }', '{ op: restore }'], '[{ id: 0, forceNewChannel: true }]'), 'linux')).toMatch(/channel 0 sets forceNewChannel/);
  });

  it('the plan: a real lab plans 11-rescind-and-reoffer not applicable with the reason; an emulated plan runs it', async () => {
    const s = await loadScenarioFile('bench/scenarios/11-rescind-and-reoffer.yaml');
    const input = {
      lab: 'l', scenarios: [s],
      hosts: [{ name: 'hv-a', build: '26100', migrationPartner: undefined, capacity: { memoryMB: 65536, vmSlots: 4 }, attach: ['vm-handle' as const] }],
      templates: [{ name: 'ubuntu', parentDisk: 'p.vhdx', memoryMB: 2048, guest: { osName: 'ubuntu' } }],
    };
    const real = makePlan({ ...input, vmJobNotApplicable: (x) => { const why = vmStepNotApplicable(x, 'linux'); return why ? `vm-handle: ${why}` : undefined; } });
    expect(real.jobs).toHaveLength(1);
    expect(real.jobs[0]!.notApplicable).toMatch(/^vm-handle: channel 2 sets forceNewChannel/);
    expect(makePlan(input).jobs[0]!.notApplicable).toBeUndefined();
  });
});
