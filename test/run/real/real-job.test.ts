// The real side of a job against fakes: which commands reach the drivers and Hyper-V, in
// what order; the bench events and their marks; a VM operation past its deadline is a
// hang with the VM turned off; a failure before the scenario starts may be retried, one
// after may not. And the trace contract: an emulator run split into the bench's, the
// host's and the guest's files the way a lab run writes them merges back into a trace
// the checker passes.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { emulate, emulatorBackedLab, recordingOps } from './support/emulator-lab.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { runRealJob, type JobLab, type VmOps } from '../../../src/run/real/real-job.ts';
import { SimClock } from '../../../src/run/sim/sim-clock.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'real-job-'));

/** The emulator-backed lab with recorded Hyper-V operations on hv-a and hv-b. */
function emulatorLab(events: TraceEvent[], clock: SimClock, log: string[]): JobLab {
  return emulatorBackedLab(events, {
    vmId: 'vm-1', hosts: { 'hv-a': recordingOps('hv-a', log), 'hv-b': recordingOps('hv-b', log) }, clock, log,
    migrate: async (from, to, id) => { log.push(`move ${id} ${from.host}->${to.host}`); },
  });
}

describe('runRealJob', () => {
  for (const file of ['02-inflight-host-transactions', '04-repeated-save-restore', '05-migrate-and-back', '06-checkpoint-apply', '07-pause-resume']) {
    it(`merges the bench, host and guest traces of ${file} into one the checker passes`, async () => {
      const { scenario, events } = await emulate(`bench/scenarios/${file}.yaml`);
      const clock = new SimClock();
      const d = dir();
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, clock, []), d, new AbortController().signal));
      expect(out.kind).toBe('ran');
      if (out.kind !== 'ran') return;
      const report = await checkTraces(scenario, out.traces, { minimise: false });
      expect(report.result).toMatchObject({ verdict: 'pass' });
    });
  }

  it('drives the drivers and Hyper-V in the scenario\'s order, reconnecting after each VM move', async () => {
    const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
    const log: string[] = [];
    const clock = new SimClock();
    await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, clock, log), dir(), new AbortController().signal));
    expect(log).toEqual([
      'prepare 1 channel(s)', 'guest: hold auto',
      'vsp: transact 30 300 10 ch=0', 'guest: send 10 80 2 6 ch=0',
      'move vm-1 hv-a->hv-b', 'guest reconnect',
      'vsp: transact 10 300 10 ch=0',
      'move vm-1 hv-b->hv-a', 'guest reconnect',
    ]);
  });

  it('writes bench events with the scenario\'s host names and each driver\'s mark', async () => {
    const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
    const clock = new SimClock();
    const d = dir();
    await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, clock, []), d, new AbortController().signal));
    const bench = readFileSync(join(d, 'bench.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(bench.map((b) => b.ev)).toEqual(['scenario.begin', 'vm.migrate.begin', 'vm.migrate.end', 'vm.migrate.begin', 'vm.migrate.end', 'scenario.end']);
    expect(bench[1]).toMatchObject({ from: 'host-a', to: 'host-b', side: 'bench', at: { host: expect.any(Number), guest: expect.any(Number) } });
    expect(bench.map((b) => b.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('turns a VM whose save never finishes off, and calls the job a hang', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const log: string[] = [];
    const clock = new SimClock();
    const lab = emulatorLab(events, clock, log);
    (lab.hosts['hv-a'] as { save: VmOps['save'] }).save = () => new Promise(() => {});
    const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, lab, dir(), new AbortController().signal, { opTimeoutMs: 60_000, settleQuietMs: 100, settleTimeoutMs: 1000 }));
    expect(out).toMatchObject({ kind: 'hang', message: expect.stringMatching(/Save-VM on hv-a did not finish within 60 s; the VM was turned off/) });
    expect(log).toContain('hv-a turn-off vm-1');
    expect(clock.now()).toBeGreaterThanOrEqual(60_000);
    expect(clock.now()).toBeLessThan(61_000);
  });

  it('may retry a failure before the scenario began, never one after', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const clock = new SimClock();
    const early = emulatorLab(events, clock, []);
    early.guest.command = async () => { throw new Error('ssh: connection reset'); };
    expect(await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, early, dir(), new AbortController().signal))).toMatchObject({ kind: 'infra', started: false, message: 'ssh: connection reset' });
    const late = emulatorLab(events, clock, []);
    (late.hosts['hv-a'] as { start: VmOps['start'] }).start = async () => { throw new Error('WMI job failed'); };
    expect(await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, late, dir(), new AbortController().signal))).toMatchObject({ kind: 'infra', started: true, host: 'hv-a' });
  });
});
