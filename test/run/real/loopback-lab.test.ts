// A loopback job end to end (src/run/real/loopback-lab.ts): no VM, the scenario's save,
// restore and checkpoint steps sent to the VSP as channel commands in the order the
// protocol needs them, the client's trace as the guest side, and the merged trace checked
// against the emulator. Every bench scenario a loopback job can run is run.
import { mkdtempSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loopbackNotApplicable } from '../../../src/lab/attach.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';
import { channelInstance, loopbackJobLab } from '../../../src/run/real/loopback-lab.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { emulate, emulatorLoopbackDrivers } from './support/emulator-lab.ts';

const OPTS = { opTimeoutMs: 30_000, settleQuietMs: 10, settleTimeoutMs: 1000 };
const files = readdirSync('bench/scenarios').filter((f) => f.endsWith('.yaml')).sort();

describe('loopback jobs', () => {
  it('maps save, restore and checkpoint to the VSP\'s channel commands, and never asks for a VM', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const log: string[] = [];
    const lab = loopbackJobLab({ host: 'hv-a', clock: realClock }, emulatorLoopbackDrivers(events, log));
    const out = await runRealJob({ scenario: { ...scenario, steps: [...scenario.steps, { op: 'checkpoint', name: 'c' }] }, seed: 1, hostMap: { [scenario.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'loopback-')), new AbortController().signal, OPTS);
    expect(out.kind).not.toBe('infra');
    const vsp = log.filter((l) => l.startsWith('vsp: ') && !/transact|notify/.test(l));
    const chs = scenario.channels.map((c) => c.id);
    expect(log[0]).toBe('capture');
    expect(vsp).toEqual([
      ...scenario.channels.map((c) => `vsp: open ${c.id} ${channelInstance(c.id)} loopback ring-pages=${c.h2gPages}`),
      ...chs.map((c) => `vsp: save ch=${c}`), ...chs.flatMap((c) => [`vsp: restore ch=${c}`, `vsp: resume ch=${c}`]),
      ...chs.map((c) => `vsp: save ch=${c}`), ...chs.flatMap((c) => [`vsp: restore ch=${c}`, `vsp: resume ch=${c}`]),
    ]);
  });

  for (const f of files) {
    it(`${f}: runs end to end and passes the check against the emulator, or is not applicable`, async () => {
      const s = await loadScenarioFile(join('bench/scenarios', f));
      if (loopbackNotApplicable(s)) return; // planned skipped (test/run/engine/plan-attach.test.ts)
      const { scenario, events } = await emulate(join('bench/scenarios', f));
      const log: string[] = [];
      const lab = loopbackJobLab({ host: 'hv-a', clock: realClock }, emulatorLoopbackDrivers(events, log));
      const out = await runRealJob({ scenario, seed: 1, hostMap: { [scenario.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'loopback-')), new AbortController().signal, OPTS);
      expect(out, JSON.stringify(out)).toMatchObject({ kind: 'ran' });
      if (out.kind !== 'ran') return;
      expect((await checkTraces(scenario, out.traces, { minimise: false })).result).toMatchObject({ verdict: 'pass' });
    }, 60_000);
  }
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
    await loopbackJobLab({ host: 'hv-a', clock }, late).prepare(scenario);
    expect(tries).toBe(3);
    const never = { ...d, client: { ...d.client, traceSeq: async () => { throw new Error('sample-ctl guest counters exited with 3'); } } };
    await expect(loopbackJobLab({ host: 'hv-a', clock }, never).prepare(scenario)).rejects.toThrow(/did not bind to the loopback offer within 30 s/);
  });
});
