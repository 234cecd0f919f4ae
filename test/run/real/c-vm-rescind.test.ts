// A real VM job's rescind, guest close and guest open on the real C drivers: the sample
// VSP and the Linux guest driver compiled to WebAssembly in one emulated VM
// (support/c-vm.ts, whose guest VMBus core removes and probes devices as Linux's does),
// driven by real-job.ts as a lab job drives them: the VSP's `rescind` and a new `open`
// (JobLab.offer), the guest OS's unbind, bind and drivers_autoprobe (GuestDevices). The
// merged trace (with the host's ch.rescind and ch.offer the job writes: host-inserts.ts)
// must pass bench check.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vmStepNotApplicable } from '../../../src/lab/vm-steps.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import type { Scenario } from '../../../src/scenario/model.ts';
import { cVmJob } from './support/c-vm.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const OPTS = { opTimeoutMs: 30_000, settleQuietMs: 2_000, settleTimeoutMs: 120_000 };

async function runOnC(s: Scenario) {
  const c = cVmJob(s, 'hv-a');
  const dir = mkdtempSync(join(tmpdir(), 'c-vm-rescind-'));
  const out = await runRealJob({ scenario: s, seed: 1, hostMap: { [s.host]: 'hv-a' } }, c.lab, dir, new AbortController().signal, OPTS);
  return { out, log: c.log, dir };
}

describe.skipIf(!toolchain)('rescind and guest close/open in a VM job on the C drivers', () => {
  it('11-rescind-and-reoffer, less what no real lab can drive, runs end to end and its merged trace passes bench check', async () => {
    const full = await loadScenarioFile('bench/scenarios/11-rescind-and-reoffer.yaml');
    // As written, a real lab plans it not applicable: channel 2's FORCE_NEW_CHANNEL, and
    // then a VSP told to refuse its saved state.
    expect(vmStepNotApplicable(full, 'linux')).toMatch(/channel 2 sets forceNewChannel/);
    const s: Scenario = {
      ...full,
      channels: full.channels.map((c) => ({ ...c, forceNewChannel: undefined })),
      steps: full.steps.map((st) => (st.op === 'restore' ? { op: 'restore' as const } : st)),
    };
    expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
    const { out, log, dir } = await runOnC(s);
    expect(out, JSON.stringify(out).slice(0, 400)).toMatchObject({ kind: 'ran' });
    if (out.kind !== 'ran') return;
    const r = await checkTraces(s, out.traces, { minimise: false });
    expect(r.result, JSON.stringify(r.result).slice(0, 600)).toMatchObject({ verdict: 'pass' });
    // The VSP was told to rescind and to offer the same instance again; the guest's bus
    // held the second new instance unbound until the scenario's guest-open bound it.
    const open1 = expect.stringMatching(/^vsp: open 1 8d2f5c3a-71b4-4e0e-9a6d-000000000001 /);
    expect(log.filter((l) => /^vsp: (rescind|open 1 )/.test(l))).toEqual([open1, 'vsp: rescind ch=1', open1, 'vsp: rescind ch=1', open1]);
    expect(log.filter((l) => /^guest: (bind|unbind|drivers_autoprobe)/.test(l))).toEqual([
      'guest: drivers_autoprobe 0', 'guest: bind 8d2f5c3a-71b4-4e0e-9a6d-000000000001', 'guest: drivers_autoprobe 1',
    ]);
    // ch.rescind and ch.offer are in the host's file, where the VSP was when the job asked.
    const host = readFileSync(join(dir, 'host.trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; ev: string });
    expect(host.filter((e) => e.ev === 'ch.rescind' || e.ev === 'ch.offer').map((e) => e.ev)).toEqual(['ch.rescind', 'ch.offer', 'ch.rescind', 'ch.offer']);
    expect(host.map((e) => e.seq)).toEqual(host.map((_, i) => i + 1));
  }, 300_000);

  it('the guest closes a channel with traffic in flight both ways, the VM is saved and restored while it is closed, and the guest opens it again: the merged trace passes bench check', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'c-vm-close-')), 'guest-close.yaml');
    writeFileSync(file, [
      'name: guest-close-and-open',
      'channels: [{ id: 0 }, { id: 1 }]',
      'steps:',
      '  - { op: host-send, channel: 1, count: 4, size: 128, hold: 30 }',
      '  - { op: guest-send, channel: 1, count: 4, size: 96, mode: hold, hold: 20 }',
      '  - { op: guest-send, channel: 0, count: 2, size: 64 }',
      '  - { op: run, ms: 3 }',
      '  - { op: guest-close, channel: 1 }',
      '  - { op: host-send, channel: 1, count: 3, size: 64, hold: 5 }',
      '  - { op: host-send, channel: 0, count: 2, size: 64 }',
      '  - { op: save }',
      '  - { op: restore }',
      '  - { op: guest-open, channel: 1 }',
      '  - { op: guest-send, channel: 1, count: 2, size: 64 }',
      '  - { op: settle }',
      '',
    ].join('\n'));
    const s = await loadScenarioFile(file);
    expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
    const { out, log } = await runOnC(s);
    expect(out, JSON.stringify(out).slice(0, 400)).toMatchObject({ kind: 'ran' });
    if (out.kind !== 'ran') return;
    const r = await checkTraces(s, out.traces, { minimise: false });
    expect(r.result, JSON.stringify(r.result).slice(0, 600)).toMatchObject({ verdict: 'pass' });
    // The guest OS let the device go and took it back; the bus's autoprobe was never touched.
    expect(log.filter((l) => /^guest: (bind|unbind|drivers_autoprobe)/.test(l))).toEqual([
      'guest: unbind 8d2f5c3a-71b4-4e0e-9a6d-000000000001', 'guest: bind 8d2f5c3a-71b4-4e0e-9a6d-000000000001',
    ]);
    // What the guest had in flight on the closed channel ended there, cancelled, never resent.
    const events = readFileSync(out.traces[0]!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { side: string; ev: string; ch?: number });
    expect(events.filter((e) => e.side === 'guest' && e.ev === 'pkt.cancel' && e.ch === 1).length).toBeGreaterThan(0);
  }, 300_000);
});
