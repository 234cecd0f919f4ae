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
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { checkTraces } from '../../../src/run/check-trace.ts';
import { runRealJob, type JobLab, type VmOps } from '../../../src/run/real-job.ts';
import { SimClock } from '../../../src/run/sim-clock.ts';
import type { Scenario } from '../../../src/scenario/model.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'real-job-'));

/**
 * A lab that "runs" the scenario by handing out an emulator trace: each bench event the
 * job writes reads the host's mark once, so the k-th read answers with the driver events
 * before the emulator's k-th bench event.
 */
function emulatorBackedLab(events: TraceEvent[], clock: SimClock, log: string[], hosts = ['hv-a', 'hv-b']): JobLab {
  const bench = events.filter((e) => e.side === 'bench');
  const idx = bench.map((b) => events.indexOf(b));
  let k = -1;
  const count = (side: string) => events.slice(0, idx[Math.max(0, k)] ?? events.length).filter((e) => e.side === side).length;
  const fileOf = (side: 'host' | 'guest') => events.filter((e) => e.side === side).map((e, i) => `${JSON.stringify({ ...e, seq: i + 1 })}\n`).join('');
  const ops = (host: string): VmOps => ({
    host,
    save: async (id) => log.push(`${host} save ${id}`),
    start: async (id) => log.push(`${host} start ${id}`),
    suspend: async (id) => log.push(`${host} suspend ${id}`),
    resume: async (id) => log.push(`${host} resume ${id}`),
    checkpoint: async (id, n) => { log.push(`${host} checkpoint ${id} ${n}`); },
    restoreCheckpoint: async (id, n) => { log.push(`${host} apply ${id} ${n}`); return { state: 'Saved' }; },
    turnOff: async (id) => log.push(`${host} turn-off ${id}`),
  });
  return {
    vmId: 'vm-1',
    hosts: Object.fromEntries(hosts.map((h) => [h, ops(h)])),
    migrate: async (from, to, id) => { log.push(`move ${id} ${from.host}->${to.host}`); },
    guest: {
      command: async (t) => { log.push(`guest: ${t}`); },
      traceSeq: async () => count('guest'),
      readTrace: async () => fileOf('guest'),
      reconnect: async () => { log.push('guest reconnect'); },
    },
    vsp: {
      command: async (t) => { log.push(`vsp: ${t}`); },
      traceSeq: async () => { k++; return count('host'); },
      readTrace: async () => fileOf('host'),
    },
    prepare: async (s) => { log.push(`prepare ${s.channels.length} channel(s)`); },
    clock,
  };
}

async function emulate(file: string, seed = 1): Promise<{ scenario: Scenario; events: TraceEvent[] }> {
  const scenario = await loadScenarioFile(file);
  const sink = new MemorySink();
  executeScenario(scenario, { seed, sink });
  return { scenario, events: sink.events };
}

describe('runRealJob', () => {
  for (const file of ['02-inflight-host-transactions', '04-repeated-save-restore', '05-migrate-and-back', '06-checkpoint-apply', '07-pause-resume']) {
    it(`merges the bench, host and guest traces of ${file} into one the checker passes`, async () => {
      const { scenario, events } = await emulate(`bench/scenarios/${file}.yaml`);
      const clock = new SimClock();
      const d = dir();
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorBackedLab(events, clock, []), d, new AbortController().signal));
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
    await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorBackedLab(events, clock, log), dir(), new AbortController().signal));
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
    await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorBackedLab(events, clock, []), d, new AbortController().signal));
    const bench = readFileSync(join(d, 'bench.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(bench.map((b) => b.ev)).toEqual(['scenario.begin', 'vm.migrate.begin', 'vm.migrate.end', 'vm.migrate.begin', 'vm.migrate.end', 'scenario.end']);
    expect(bench[1]).toMatchObject({ from: 'host-a', to: 'host-b', side: 'bench', at: { host: expect.any(Number), guest: expect.any(Number) } });
    expect(bench.map((b) => b.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('turns a VM whose save never finishes off, and calls the job a hang', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const log: string[] = [];
    const clock = new SimClock();
    const lab = emulatorBackedLab(events, clock, log);
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
    const early = emulatorBackedLab(events, clock, []);
    early.guest.command = async () => { throw new Error('ssh: connection reset'); };
    expect(await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, early, dir(), new AbortController().signal))).toMatchObject({ kind: 'infra', started: false, message: 'ssh: connection reset' });
    const late = emulatorBackedLab(events, clock, []);
    (late.hosts['hv-a'] as { start: VmOps['start'] }).start = async () => { throw new Error('WMI job failed'); };
    expect(await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, late, dir(), new AbortController().signal))).toMatchObject({ kind: 'infra', started: true, host: 'hv-a' });
  });
});
