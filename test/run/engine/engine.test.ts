// The engine end to end on the simulated lab, in simulated time: plan.json first, every
// job recorded once, VMs removed (or kept when asked), quarantine applied, a stopped run
// resumed, and a resume of a different plan refused.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../../../src/run/engine/journal.ts';
import { planJson } from '../../../src/run/engine/plan.ts';
import { parseYamlText } from '../../../src/lab/yaml-input.ts';
import { quarantineFromSource } from '../../../src/run/engine/quarantine.ts';
import { SimClock } from '../../../src/run/sim/sim-clock.ts';
import { runSim, type SimRunOptions, type SimShape } from '../../../src/run/sim/sim-run.ts';
import { createReporters } from '../../../src/report/registry.ts';
import { ReporterMultiplexer } from '../../../src/report/reporter.ts';
import { loadSummary } from '../../../src/report/summary-schema.ts';

const SHAPE: SimShape = { hosts: 6, builds: 2, templates: 2, scenarios: 5, seeds: 2, vmSlots: 3 };
const dir = () => mkdtempSync(join(tmpdir(), 'engine-'));

function sim(runDir: string, extra: Partial<SimRunOptions> = {}) {
  const clock = new SimClock();
  const run = runSim({ shape: SHAPE, runDir, runId: 'r1', clock, seed: 5, msPerSecond: 1000, resume: false, ...extra, ...(extra.clock ? {} : { clock }) });
  return { clock, result: clock.drive(run) };
}

describe('runEngine on the simulated lab', () => {
  it('writes plan.json first, records every planned job once, and leaves no VM behind', async () => {
    const d = join(dir(), 'r1');
    const mux = new ReporterMultiplexer(createReporters(['json', 'junit'], { runDir: d }));
    const r = await sim(d, { reporter: mux }).result;
    expect(mux.failures).toEqual([]);
    // The report layer reads back what the engine produced (retries and hedges included).
    expect((await loadSummary(join(d, 'summary.json'))).jobs).toHaveLength(r.plan.jobs.length);
    expect(r.complete).toBe(true);
    expect(readFileSync(join(d, 'plan.json'), 'utf8')).toBe(planJson(r.plan));
    expect(r.summary!.jobs.map((j) => j.jobId)).toEqual(r.plan.jobs.map((j) => j.jobId));
    const state = Journal.open(join(d, 'journal.jsonl')).state;
    expect(state.results.size).toBe(r.plan.jobs.length);
    expect(state.duplicateEnds).toEqual([]);
    expect(state.finished).toBe(true);
    expect(r.lab.vms.size).toBe(0);
    expect(r.scheduler.reused).toBeGreaterThan(0);
  });

  it('resumes a stopped run: jobs already recorded are not run again', async () => {
    const root = dir();
    const d = join(root, 'r1');
    const stop = new AbortController();
    const first = sim(d, { stopSignal: stop.signal });
    void first.clock.sleep(120_000).then(() => stop.abort());
    const r1 = await first.result;
    expect(r1.complete).toBe(false);
    expect(r1.lab.vms.size).toBe(0);
    const done = Journal.open(join(d, 'journal.jsonl')).state.results;
    expect(done.size).toBeGreaterThan(0);
    expect(done.size).toBeLessThan(r1.plan.jobs.length);

    const r2 = await sim(d, { resume: true }).result;
    expect(r2.complete).toBe(true);
    const state = Journal.open(join(d, 'journal.jsonl')).state;
    expect(state.duplicateEnds).toEqual([]);
    expect(state.results.size).toBe(r2.plan.jobs.length);
    // Results from before the stop are kept as they were.
    for (const [id, res] of done) expect(r2.summary!.jobs.find((j) => j.jobId === id)).toEqual(res);
  });

  it('refuses to reuse a run directory without --resume, and to resume another plan', async () => {
    const d = join(dir(), 'r1');
    await sim(d).result;
    await expect(sim(d).result).rejects.toThrow(/already holds run r1 .*--resume/);
    await expect(sim(d, { resume: true, shape: { ...SHAPE, seeds: 3 } }).result).rejects.toThrow(/the plan changed since run r1 started/);
  });

  it('keeps the VMs of failed jobs with --keep-failed and removes all others', async () => {
    const d = join(dir(), 'r1');
    const r = await sim(d, { keepFailed: true, divergeRate: 0.2, failureScale: 0 }).result;
    const diverged = r.summary!.jobs.filter((j) => j.verdict === 'diverge');
    expect(diverged.length).toBeGreaterThan(0);
    const kept = Journal.open(join(d, 'journal.jsonl')).state.keptVms;
    expect(kept.map((k) => k.jobId).sort()).toEqual(diverged.map((j) => j.jobId).sort());
    expect([...r.lab.vms.keys()].sort()).toEqual(kept.map((k) => k.key).sort());
  });

  it('marks quarantined jobs, which then do not fail the run', async () => {
    const q = quarantineFromSource(parseYamlText('entries:\n  - scenario: sim-0\n    reason: known bad\n    until: 2099-01-01\n', 'q.yaml'));
    const r = await sim(join(dir(), 'r1'), { quarantine: q, divergeRate: 1, failureScale: 0 }).result;
    const s0 = r.summary!.jobs.filter((j) => j.scenario === 'sim-0');
    expect(s0.every((j) => j.quarantined?.reason.startsWith('known bad'))).toBe(true);
    expect(r.summary!.jobs.filter((j) => j.scenario !== 'sim-0').every((j) => j.quarantined === undefined)).toBe(true);
    expect(r.outcome!.counts.quarantined).toBe(s0.length);
  });

  it('takes a host that fails preflight out and runs its jobs on hosts of its build', async () => {
    const d = join(dir(), 'r1');
    const r = await sim(d, { shape: { ...SHAPE, failPreflight: [0] } }).result;
    expect(Journal.open(join(d, 'journal.jsonl')).state.hostsOut.get('sim-000')).toMatch(/preflight/);
    const planned = r.plan.jobs.filter((j) => j.host === 'sim-000' && !j.partner);
    expect(planned.length).toBeGreaterThan(0);
    for (const j of planned) {
      const res = r.summary!.jobs.find((x) => x.jobId === j.jobId)!;
      expect(res.host).not.toBe('sim-000');
      expect(res.hostBuild).toBe(j.hostBuild);
    }
  });
});
