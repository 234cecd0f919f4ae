// The emulated lab on the run engine: the same verdicts as running each job directly,
// migration scenarios planned without host pairs, jobs kept on their host (its gap
// choices), every job recorded once in the engine's journal, and a dead worker retried.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLabFile, type EmulatedLab } from '../../../src/run/emulated/emulated-lab.ts';
import { EmulatedExecutor, emulatedEngineInputs } from '../../../src/run/emulated/emulated-engine.ts';
import { runEmulatedJob } from '../../../src/run/workers/emulated-job.ts';
import { runEngine } from '../../../src/run/engine/engine.ts';
import { Journal } from '../../../src/run/engine/journal.ts';
import { WorkerPool } from '../../../src/run/workers/worker-pool.ts';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';

let pool: WorkerPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function smallLab(): Promise<{ lab: EmulatedLab; scenarios: Awaited<ReturnType<typeof loadScenarioPaths>> }> {
  const full = await loadLabFile('lab/emulated.yaml');
  if (full.kind !== 'emulated') throw new Error('lab/emulated.yaml is not an emulated lab');
  const lab: EmulatedLab = { ...full, hosts: full.hosts.slice(0, 2), seeds: [1] };
  const scenarios = await loadScenarioPaths(['bench/scenarios/02-inflight-host-transactions.yaml', 'bench/scenarios/05-migrate-and-back.yaml', 'bench/scenarios/06-checkpoint-apply.yaml']);
  return { lab, scenarios };
}

describe('the emulated lab on the run engine', () => {
  it('gives every job the verdict a direct run gives it, on its own host, recorded once', async () => {
    const { lab, scenarios } = await smallLab();
    const { plan, hosts } = emulatedEngineInputs(lab, scenarios, 2);
    expect(plan.unplaced).toEqual([]);
    expect(plan.jobs).toHaveLength(2 * 3 * lab.guests.length);
    const runDir = join(mkdtempSync(join(tmpdir(), 'emulated-engine-')), 'r1');
    pool = new WorkerPool({ size: 2 });
    const r = await runEngine({
      runId: 'r1', runDir, plan, hosts, resume: false, scheduler: { placement: 'pinned' },
      hooks: { sweepHost: async () => 0 }, executor: () => new EmulatedExecutor(pool!, lab, scenarios, runDir),
    });
    expect(r.complete).toBe(true);
    for (const job of r.summary!.jobs) {
      const planned = plan.jobs.find((j) => j.jobId === job.jobId)!;
      expect(job.host).toBe(planned.host);
      const choices = lab.hosts.find((h) => h.name === job.host)!.choices;
      const direct = runEmulatedJob({ kind: 'emulated-job', jobId: job.jobId, scenario: scenarios.find((s) => s.name === job.scenario)!, seed: job.seed, choices, traceFile: join(runDir, `${job.jobId}.direct.jsonl`) });
      expect({ id: job.jobId, verdict: job.verdict, cls: job.divergenceClass }).toEqual({ id: job.jobId, verdict: direct.verdict, cls: direct.divergenceClass });
      expect(job.evidence.trace).toBe(`jobs/${job.jobId}/emulator.jsonl`);
    }
    const state = Journal.open(join(runDir, 'journal.jsonl')).state;
    expect(state.duplicateEnds).toEqual([]);
    expect(state.results.size).toBe(plan.jobs.length);
  });

  it('runs a job again on another worker when its worker dies', async () => {
    const { lab, scenarios } = await smallLab();
    const { plan, hosts } = emulatedEngineInputs({ ...lab, hosts: lab.hosts.slice(0, 1) }, scenarios.slice(0, 1), 1);
    const runDir = join(mkdtempSync(join(tmpdir(), 'emulated-engine-')), 'r1');
    pool = new WorkerPool({ size: 1 });
    let calls = 0;
    const flaky = {
      run: (task: Parameters<WorkerPool['run']>[0]) => {
        calls++;
        return calls === 1 ? Promise.reject(Object.assign(new Error('worker 1 died while running the job'), {})) : pool!.run(task);
      },
    } as unknown as WorkerPool;
    const r = await runEngine({
      runId: 'r1', runDir, plan, hosts, resume: false, scheduler: { placement: 'pinned' },
      hooks: { sweepHost: async () => 0 }, executor: () => new EmulatedExecutor(flaky, lab, scenarios, runDir),
    });
    expect(r.summary!.jobs[0]).toMatchObject({ verdict: 'pass', attempts: 2, evidence: { trace: `jobs/${plan.jobs[0]!.jobId}/emulator-2.jsonl` } });
  });
});
