// A loopback job end to end (src/run/real/loopback-lab.ts): no VM, the scenario's save,
// restore, checkpoint, pause and resume steps sent to the VSP as channel commands in the
// order the protocol needs them, the client's trace as the guest side, and the merged
// trace checked against the emulator's loopback topology (VSP and client in one
// partition). Every bench scenario a loopback job can run is run.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loopbackNotApplicable } from '../../../src/lab/attach.ts';
import { loopbackStepProblem } from '../../../src/scenario/loopback.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';
import { loopbackJobLab } from '../../../src/run/real/loopback-lab.ts';
import { channelInstance, sampleControl } from '../../../devices/sample/control.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import type { Scenario } from '../../../src/scenario/model.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { inTopology } from '../../../src/run/real/lab-run.ts';
import { emulate, emulatorLoopbackDrivers } from './support/emulator-lab.ts';

const OPTS = { opTimeoutMs: 30_000, settleQuietMs: 10, settleTimeoutMs: 1000 };
const files = readdirSync('bench/scenarios').filter((f) => f.endsWith('.yaml')).sort();

describe('loopback jobs', () => {
  it('maps save, restore, checkpoint, pause and resume to the VSP\'s channel commands, and never asks for a VM', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml', 1, 'loopback');
    const log: string[] = [];
    const lab = loopbackJobLab({ host: 'hv-a', clock: realClock, control: sampleControl }, emulatorLoopbackDrivers(events, log));
    const steps = [...scenario.steps, { op: 'checkpoint', name: 'c' }, { op: 'pause' }, { op: 'resume' }] as Scenario['steps'];
    const out = await runRealJob({ scenario: { ...scenario, steps }, seed: 1, hostMap: { [scenario.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'loopback-')), new AbortController().signal, OPTS);
    expect(out.kind).not.toBe('infra');
    const vsp = log.filter((l) => l.startsWith('vsp: ') && !/transact|notify/.test(l));
    const chs = scenario.channels.map((c) => c.id);
    expect(log[0]).toBe('capture');
    const save = chs.flatMap((c) => [`vsp: save ch=${c}`, `vsp: detach ch=${c}`]);
    const restore = [...chs.map((c) => `vsp: restore ch=${c}`), ...chs.map((c) => `vsp: resume ch=${c}`)];
    expect(vsp).toEqual([
      ...scenario.channels.map((c) => `vsp: open ${c.id} ${channelInstance(c.id)} loopback ring-pages=${c.h2gPages}`),
      ...save, ...restore, // save, restore
      ...chs.flatMap((c) => [`vsp: save ch=${c}`, `vsp: resume ch=${c}`]), // checkpoint: save and continue
      ...chs.map((c) => `vsp: pause ch=${c}`), ...chs.map((c) => `vsp: resume ch=${c}`),
    ]);
  });

  for (const f of files) {
    it(`${f}: runs end to end and passes the check against the emulator's loopback topology, or is not applicable`, async () => {
      const s = await loadScenarioFile(join('bench/scenarios', f));
      if (loopbackStepProblem(s)) {
        // Planned skipped (test/run/engine/plan-attach.test.ts), and the emulator refuses it by the same rule.
        expect(loopbackNotApplicable(s)).toBeDefined();
        expect(() => executeScenario({ ...s, topology: 'loopback' }, { seed: 1, sink: new MemorySink() })).toThrow(/topology: loopback cannot run/);
        return;
      }
      if (loopbackNotApplicable(s)) return; // more channels than the sample client serves
      const { scenario, events } = await emulate(join('bench/scenarios', f), 1, 'loopback');
      const log: string[] = [];
      const lab = loopbackJobLab({ host: 'hv-a', clock: realClock, control: sampleControl }, emulatorLoopbackDrivers(events, log));
      const out = await runRealJob({ scenario, seed: 1, hostMap: { [scenario.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'loopback-')), new AbortController().signal, OPTS);
      expect(out, JSON.stringify(out)).toMatchObject({ kind: 'ran' });
      if (out.kind !== 'ran') return;
      expect((await checkTraces(inTopology({ attach: 'loopback' }, s), out.traces, { minimise: false })).result).toMatchObject({ verdict: 'pass' });
    }, 60_000);
  }

  it('is checked against the loopback topology, where the client runs on through a channel pause, and not against a VM', async () => {
    const file = 'test/fixtures/scenarios/loopback-client-runs-on.yaml';
    const run = async (topology: 'vm' | 'loopback') => {
      const { scenario, events } = await emulate(file, 1, topology);
      const lab = loopbackJobLab({ host: 'hv-a', clock: realClock, control: sampleControl }, emulatorLoopbackDrivers(events, []));
      const out = await runRealJob({ scenario, seed: 1, hostMap: { [scenario.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'loopback-')), new AbortController().signal, OPTS);
      if (out.kind !== 'ran') throw new Error(JSON.stringify(out));
      return out.traces;
    };
    const s = await loadScenarioFile(file);
    const loopbackTrace = await run('loopback');
    // The client completed its held HostTransactions while the channels were paused.
    const lines = readFileSync(loopbackTrace[0]!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { side: string; ev: string });
    const pause = lines.findIndex((e) => e.ev === 'vm.pause');
    const resume = lines.findIndex((e) => e.ev === 'vm.resume');
    expect(lines.slice(pause, resume).filter((e) => e.side === 'guest' && e.ev === 'pkt.complete')).toHaveLength(5);
    expect((await checkTraces(inTopology({ attach: 'loopback' }, s), loopbackTrace, { minimise: false })).result.verdict).toBe('pass');
    expect((await checkTraces(s, loopbackTrace, { minimise: false })).result.verdict).toBe('diverge');
    // And a VM's trace (a frozen guest) is no loopback job's.
    expect((await checkTraces(inTopology({ attach: 'loopback' }, s), await run('vm'), { minimise: false })).result.verdict).toBe('diverge');
  }, 60_000);
});

describe('loopback job set-up', () => {
  it('waits for the client to bind after the offer, and says so when it never does', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const log: string[] = [];
    const d = emulatorLoopbackDrivers(events, log);
    let t = 0;
    let tries = 0;
    const clock = { now: () => t, sleep: async (ms: number) => { t += ms; } };
    const late = { ...d, client: { ...d.client, traceSeq: async () => { if (++tries < 3) throw new Error('sample-ctl guest counters exited with 3'); return d.client.traceSeq(); } } };
    await loopbackJobLab({ host: 'hv-a', clock, control: sampleControl }, late).prepare(scenario);
    expect(tries).toBe(3);
    const never = { ...d, client: { ...d.client, traceSeq: async () => { throw new Error('sample-ctl guest counters exited with 3'); } } };
    await expect(loopbackJobLab({ host: 'hv-a', clock, control: sampleControl }, never).prepare(scenario)).rejects.toThrow(/did not bind to the loopback offer within 30 s/);
  });
});
