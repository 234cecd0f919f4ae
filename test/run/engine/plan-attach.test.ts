// Attach modes in the plan and the engine: each job carries its mode; loopback jobs need no
// VM or partner; jobs that cannot run in their mode are planned (so they show) but never
// started, and end `skipped` with the reason in summary.json, the matrix and JUnit.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildJunitXml } from '../../../src/report/junit-reporter.ts';
import { buildMatrix } from '../../../src/report/matrix.ts';
import { createReporters } from '../../../src/report/registry.ts';
import { ReporterMultiplexer } from '../../../src/report/reporter.ts';
import { loadSummary } from '../../../src/report/summary-schema.ts';
import { runEngine } from '../../../src/run/engine/engine.ts';
import { formatPlan, makePlan, type PlanHost, type PlannedJob } from '../../../src/run/engine/plan.ts';
import type { JobExecutor } from '../../../src/run/engine/scheduler.ts';
import type { Scenario } from '../../../src/scenario/model.ts';

const ch = [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }];
const saveRestore: Scenario = { name: 'save-restore', channels: ch, saveBufferSize: 4096, host: 'host-a', choices: {}, steps: [{ op: 'save' }, { op: 'restore' }] };
const migrates: Scenario = { ...saveRestore, name: 'migrates', steps: [{ op: 'migrate', to: 'host-b' }] };
const cap = { vmSlots: 2, memoryMB: 8192 };
const hosts: PlanHost[] = [
  { name: 'lo', build: '1', migrationPartner: undefined, capacity: cap, attach: ['loopback'] },
  { name: 'vm1', build: '1', migrationPartner: 'vm2', capacity: cap, attach: ['loopback', 'vm-handle'] },
  { name: 'vm2', build: '1', migrationPartner: 'vm1', capacity: cap, attach: ['vm-handle'] },
];
const template = { name: 'ubuntu', parentDisk: 'D:\\p.vhdx', memoryMB: 2048, guest: { osName: 'Ubuntu' } };
const plan = () => makePlan({ lab: 'l', hosts, templates: [template], scenarios: [saveRestore, migrates] });
const byId = (p: ReturnType<typeof plan>) => new Map(p.jobs.map((j) => [j.jobId, j]));

describe('plan with attach modes', () => {
  it('gives every job its mode, and plans loopback jobs without a VM or partner on hosts offering loopback', () => {
    const jobs = byId(plan());
    expect([...jobs.values()].every((j) => j.attach === 'loopback' || j.attach === 'vm-handle')).toBe(true);
    expect(jobs.get('save-restore+loopback@lo=1')).toMatchObject({ attach: 'loopback', memoryMB: 0, locks: ['host:lo'] });
    expect(jobs.get('save-restore+loopback@lo=1')?.notApplicable).toBeUndefined();
    expect(jobs.get('save-restore+loopback@vm1=1')?.notApplicable).toBeUndefined();
    expect(jobs.has('save-restore+loopback@vm2=1')).toBe(false);
    expect(jobs.get('save-restore+ubuntu@vm2=1')?.attach).toBe('vm-handle');
    expect(jobs.get('save-restore+ubuntu@vm2=1')?.notApplicable).toBeUndefined();
    expect(jobs.get('migrates+ubuntu@vm1@vm2=1')?.notApplicable).toBeUndefined();
  });

  it('plans VM-only steps on loopback, and VM jobs on a host without a broker, as not applicable with the reason', () => {
    const jobs = byId(plan());
    expect(jobs.get('migrates+loopback@lo=1')?.notApplicable).toMatch(/step 1 "migrate".*no VM/);
    expect(jobs.get('save-restore+ubuntu@lo=1')?.notApplicable).toMatch(/lo has no handle broker/);
    const text = formatPlan(plan());
    expect(text).toMatch(/save-restore\+loopback@lo=1 {2}\[loopback\]/);
    expect(text).toMatch(/not applicable: migrates\+loopback@lo=1 {2}\[loopback\]: loopback: step 1/);
    // Every job that will run has a mode both ends can use.
    for (const j of plan().jobs.filter((x) => !x.notApplicable)) {
      const h = hosts.find((x) => x.name === j.host)!;
      expect(h.attach).toContain(j.attach);
    }
  });

  it('does not pair a vm-handle host with a partner that offers no vm-handle', () => {
    const p = makePlan({ lab: 'l', hosts: [{ ...hosts[1]!, migrationPartner: 'lo' }, { ...hosts[0]!, migrationPartner: 'vm1' }], templates: [template], scenarios: [migrates] });
    expect(p.jobs.some((j) => j.jobId === 'migrates+ubuntu@vm1@lo=1')).toBe(false);
    expect(p.unplaced).toContainEqual(expect.objectContaining({ host: 'vm1', reason: 'the partner lo offers no vm-handle attach' }));
  });
});

describe('engine and not-applicable jobs', () => {
  it('never starts them, and records them skipped with the reason in summary.json, the matrix and JUnit', async () => {
    const p = plan();
    const started: string[] = [];
    const executor: JobExecutor = {
      runAttempt: async (job: PlannedJob) => {
        started.push(job.jobId);
        return { kind: 'done', result: { jobId: job.jobId, host: job.host, hostBuild: job.hostBuild, guest: job.guest, template: job.template, scenario: job.scenario, seed: job.seed, attach: job.attach, verdict: 'pass', durationsMs: {}, evidence: {} } };
      },
      dropIdleVm: async () => undefined,
    };
    const runDir = join(mkdtempSync(join(tmpdir(), 'plan-attach-')), 'r1');
    const mux = new ReporterMultiplexer(createReporters(['json', 'junit'], { runDir }));
    const r = await runEngine({
      runId: 'r1', runDir, plan: p, resume: false, reporter: mux, executor: () => executor, hooks: { sweepHost: async () => 0 },
      hosts: hosts.map((h) => ({ name: h.name, build: '1', capacity: h.capacity, partner: h.migrationPartner })),
    });
    const na = p.jobs.filter((j) => j.notApplicable);
    expect(na.length).toBeGreaterThan(0);
    expect(started.sort()).toEqual(p.jobs.filter((j) => !j.notApplicable).map((j) => j.jobId).sort());
    const summary = await loadSummary(join(runDir, 'summary.json'));
    for (const j of na) {
      expect(summary.jobs.find((x) => x.jobId === j.jobId)).toMatchObject({ verdict: 'skipped', attach: j.attach, message: `not applicable: ${j.notApplicable}` });
    }
    expect(r.outcome?.counts.skipped).toBe(na.length);
    const cell = buildMatrix(summary.jobs).cells;
    expect([...cell.values()].some((c) => c.verdict === 'skipped')).toBe(true);
    const xml = buildJunitXml(summary);
    expect(xml).toContain('<skipped message="not applicable: loopback: step 1');
  });
});
