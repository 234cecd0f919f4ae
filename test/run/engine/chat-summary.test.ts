// The nightly paragraph: counts first, then what broke and what was fixed since the last
// run, what is still failing and since when, and where the report is.
import { describe, expect, it } from 'vitest';
import { chatSummary } from '../../../src/run/engine/chat-summary.ts';
import { cellId, type JobResult, type RunSummary } from '../../../src/report/summary.ts';
import type { Trends } from '../../../src/report/trends.ts';

const job = (scenario: string, verdict: JobResult['verdict'], extra: Partial<JobResult> = {}): JobResult => ({
  jobId: `${scenario}@h`, host: 'h', hostBuild: '26100', guest: 'Ubuntu 24.04', template: 't', scenario, seed: 1, verdict, durationsMs: {}, evidence: {}, ...extra,
});
const summary = (jobs: JobResult[]): RunSummary => ({ version: 1, runId: 'n2', lab: 'lab-a', startedAt: '2026-11-24T03:00:00Z', finishedAt: '2026-11-24T04:00:00Z', jobs });

describe('chatSummary', () => {
  it('says what broke, what was fixed and what is still failing since when', () => {
    const jobs = [job('save', 'diverge', { divergenceClass: 'lost' }), job('migrate', 'pass'), job('checkpoint', 'hang', { divergenceClass: 'hang' }), job('pause', 'pass')];
    const cells = new Map([
      [cellId(jobs[0]!), { since: 'n2', sinceStartedAt: '', runsInState: 1, previous: { runId: 'n1', verdict: 'pass' as const, divergenceClass: null } }],
      [cellId(jobs[1]!), { since: 'n2', sinceStartedAt: '', runsInState: 1, previous: { runId: 'n1', verdict: 'diverge' as const, divergenceClass: 'duplicated' } }],
      [cellId(jobs[2]!), { since: 'n0', sinceStartedAt: '', runsInState: 3 }],
      [cellId(jobs[3]!), { since: 'n0', sinceStartedAt: '', runsInState: 3 }],
    ]);
    const text = chatSummary(summary(jobs), { runs: [], cells } as Trends, 'https://reports.example/n2/report.html');
    expect(text).toBe('FAIL: run n2 on lab-a, 4 jobs: 2 pass, 1 diverge, 1 hang, 0 error. '
      + 'Newly failing: save on 26100 / Ubuntu 24.04: pass -> diverge (lost). '
      + 'Fixed: migrate on 26100 / Ubuntu 24.04: diverge (duplicated) -> pass. '
      + 'Still failing: checkpoint on 26100 / Ubuntu 24.04: hang (hang) since n0. '
      + 'Report: https://reports.example/n2/report.html');
  });

  it('counts quarantined failures apart and passes when they are the only ones', () => {
    const jobs = [job('save', 'diverge', { quarantined: { reason: 'known', until: '2099-01-01T00:00:00Z' } }), job('pause', 'pass')];
    expect(chatSummary(summary(jobs), undefined, undefined)).toBe('PASS: run n2 on lab-a, 2 jobs: 1 pass, 1 diverge, 0 hang, 0 error (1 excused by quarantine). No history to compare with. Still failing: save on 26100 / Ubuntu 24.04: diverge [quarantined].');
  });

  it('says "first run" when the history holds no other run of the lab, "no change" only when it does', () => {
    const jobs = [job('save', 'pass')];
    const row = (runId: string) => ({ runId, lab: 'lab-a', startedAt: '', finishedAt: '', counts: {} as never, exitCode: 0 });
    const cells = new Map([[cellId(jobs[0]!), { since: 'n2', sinceStartedAt: '', runsInState: 1 }]]);
    expect(chatSummary(summary(jobs), { runs: [row('n2')], cells } as Trends, undefined)).toBe('PASS: run n2 on lab-a, 1 jobs: 1 pass, 0 diverge, 0 hang, 0 error. First run of lab-a: nothing to compare with yet.');
    expect(chatSummary(summary(jobs), { runs: [row('n1'), row('n2')], cells } as Trends, undefined)).toContain('No change since the last run.');
  });
});
