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
import fc from 'fast-check';
import { sampleControl } from '../../devices/sample/control.ts';
import { runRealJob, type GuestDevices, type GuestDeviceState } from '../../src/run/real/real-job.ts';
import { SimClock } from '../../src/run/sim/sim-clock.ts';
import { emulate, emulatorBackedLab, recordingOps } from '../run/real/support/emulator-lab.ts';

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

  it('a Windows guest of the sample runs a rescind, guest close and guest open (its driver\'s trace outlives its devices); not a held new instance, nor every channel closed at once', async () => {
    expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-open, channel: 0 }', '{ op: rescind, channel: 1 }']), 'windows')).toBeUndefined();
    expect(vmStepNotApplicable(await scenario(['{ op: rescind, channel: 1, reopen: false }', '{ op: guest-open, channel: 1 }']), 'windows')).toMatch(/reopen: false: a Windows guest has no way to keep/);
    // The driver's control device goes with its last device: nothing could read it meanwhile.
    expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-close, channel: 1 }', '{ op: guest-open, channel: 0 }', '{ op: guest-open, channel: 1 }']), 'windows'))
      .toBe('step 2 "guest-close" closes the last open channel: a Windows guest driver\'s control device goes with its last device, so the bench could not read the driver until a channel opens again');
    expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-open, channel: 0 }', '{ op: guest-close, channel: 1 }', '{ op: guest-open, channel: 1 }']), 'windows')).toBeUndefined();
    expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-close, channel: 1 }', '{ op: guest-open, channel: 0 }', '{ op: guest-open, channel: 1 }']), 'linux')).toBeUndefined();
  });

  it('a device whose control does not say its Windows driver\'s trace outlives a device runs none of them on a Windows guest', async () => {
    const control = deviceOf(SAMPLE_DEVICE).control!;
    const saved = control.guestUnbind;
    try {
      (control as { guestUnbind?: unknown }).guestUnbind = { linuxDriver: 'vmbus_sample_guest' };
      expect(vmStepNotApplicable(await scenario(['{ op: guest-close, channel: 0 }', '{ op: guest-open, channel: 0 }']), 'windows'))
        .toMatch(/^step 1 "guest-close": the sample device names no way for a windows guest to close and reopen its channel \(control\.guestUnbind\.windowsPnp/);
      expect(vmStepNotApplicable(await scenario(['{ op: rescind, channel: 1 }']), 'windows')).toMatch(/^step 1 "rescind": a Windows guest's PnP removes the device/);
    } finally {
      (control as { guestUnbind?: unknown }).guestUnbind = saved;
    }
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

  it('a Windows guest of the sample serves any number of channels; a device whose control says how many has more refused', async () => {
    const many = await scenario(['{ op: save }', '{ op: restore }'], '[{ id: 0 }, { id: 1 }, { id: 2 }, { id: 3 }]');
    expect(vmStepNotApplicable(many, 'windows')).toBeUndefined();
    const control = deviceOf(SAMPLE_DEVICE).control!;
    try {
      (control as { windowsGuestChannels?: number }).windowsGuestChannels = 2;
      expect(vmStepNotApplicable(many, 'windows')).toBe('4 channels: the sample device\'s Windows guest driver serves 2 in one VM (its control\'s windowsGuestChannels)');
      expect(vmStepNotApplicable(await scenario(['{ op: save }', '{ op: restore }']), 'windows')).toBeUndefined();
      expect(vmStepNotApplicable(many, 'linux')).toBeUndefined();
    } finally {
      delete (control as { windowsGuestChannels?: number }).windowsGuestChannels;
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

  it('12-rescind-and-guest-reopen is planned for a Linux guest as written; the sample\'s Windows guest is refused its held new instance, with the reason', async () => {
    const s = await loadScenarioFile('bench/scenarios/12-rescind-and-guest-reopen.yaml');
    expect(s.steps.map((st) => st.op)).toEqual(expect.arrayContaining(['rescind', 'guest-close', 'guest-open', 'save', 'restore']));
    expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
    // Its rescinds and guest close a Windows guest runs; not the new instance held unopened.
    expect(vmStepNotApplicable(s, 'windows')).toMatch(/^step 21 "rescind" with reopen: false: a Windows guest has no way to keep/);
  });

  it('Invariant: a scenario planned for a Linux guest runs every step through real-job; one with a step it refuses is planned not applicable', async () => {
    // Blocks of steps on channel 1 whose scenario is valid in any order.
    const blocks: Record<string, string[]> = {
      rescind: ['{ op: rescind, channel: 1 }'],
      held: ['{ op: rescind, channel: 1, reopen: false }', '{ op: host-send, channel: 1, count: 2, size: 64 }', '{ op: guest-open, channel: 1 }'],
      close: ['{ op: guest-close, channel: 1 }', '{ op: save }', '{ op: restore }', '{ op: guest-open, channel: 1 }'],
      traffic: ['{ op: guest-send, channel: 1, count: 2, size: 64 }', '{ op: host-send, channel: 0, count: 2, size: 64 }'],
      saved: ['{ op: save }', '{ op: restore }'],
      refused: ['{ op: save }', '{ op: restore, fail: [1] }'],
    };
    await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom(...Object.keys(blocks)), { minLength: 1, maxLength: 5 }), async (picked) => {
      const file = join(mkdtempSync(join(tmpdir(), 'vm-steps-prop-')), 's.yaml');
      writeFileSync(file, ['name: vm-steps-prop', 'channels: [{ id: 0 }, { id: 1 }]', 'steps:', ...picked.flatMap((b) => blocks[b]!).map((x) => `  - ${x}`), '  - { op: settle }', ''].join('\n'));
      const { scenario, events } = await emulate(file);
      const why = vmStepNotApplicable(scenario, 'linux');
      expect(why === undefined).toBe(!picked.includes('refused'));
      if (why !== undefined) return;
      const clock = new SimClock();
      const lab = emulatorBackedLab(events, { vmId: 'vm', hosts: { 'hv-a': recordingOps('hv-a', []) }, clock, log: [], migrate: async () => {} });
      // A guest OS that does what it is told at once, and a VSP whose rescind takes the device away.
      const state = new Map<string, GuestDeviceState>([0, 1].map((c) => [sampleControl.channelInstance(c), 'bound']));
      let auto = true;
      const devices: GuestDevices = {
        state: async (i) => state.get(i) ?? 'absent',
        unbind: async (i) => { state.set(i, 'unbound'); },
        bind: async (i) => { state.set(i, 'bound'); },
        autoBind: async (on) => { auto = on; },
      };
      lab.guest.devices = devices;
      const vspCommand = lab.vsp.command;
      lab.vsp.command = async (t) => { await vspCommand(t); if (t === 'rescind ch=1') state.delete(sampleControl.channelInstance(1)); };
      lab.offer = async (c) => { state.set(sampleControl.channelInstance(c.id), auto ? 'bound' : 'unbound'); };
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { [scenario.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'vm-steps-job-')), new AbortController().signal, { opTimeoutMs: 60_000, settleQuietMs: 100, settleTimeoutMs: 1000 }));
      expect(out, JSON.stringify(out).slice(0, 300)).toMatchObject({ kind: 'ran' });
      // Every held instance was bound again: the guest's bus binds new devices by itself at the end.
      expect(auto).toBe(true);
    }), { numRuns: 25 });
  }, 120_000);
});
