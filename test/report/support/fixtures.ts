// Fixture run directories (test/fixtures/report) copied to a temp results root per test,
// since `bench report` writes into the run directory and the history beside it.
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobResult, RunSummary } from '../../../src/report/summary.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = join(REPO, 'test/fixtures/report');
export const RUN_IDS = ['2026-11-20-nightly', '2026-11-21-nightly', '2026-11-22-nightly'] as const;
export const LATEST = RUN_IDS[2];

/** A fresh results root holding copies of the given fixture runs (all three by default). */
export function resultsRoot(runs: readonly string[] = RUN_IDS): string {
  const root = mkdtempSync(join(tmpdir(), 'bench-report-'));
  for (const id of runs) cpSync(join(FIXTURES, 'results', id), join(root, id), { recursive: true });
  return root;
}

export function fixtureSummary(runId: string = LATEST): RunSummary {
  return JSON.parse(readFileSync(join(FIXTURES, 'results', runId, 'summary.json'), 'utf8')) as RunSummary;
}

/** A passing job with the given overrides, for small hand-made summaries. */
export function job(over: Partial<JobResult> & { jobId: string }): JobResult {
  return {
    host: 'hv-01', hostBuild: '10.0.26100.1', guest: 'ubuntu-24.04', template: 't', scenario: 's', seed: 1,
    verdict: 'pass', durationsMs: { real: 1000 }, evidence: {}, ...over,
  };
}

export function summaryOf(jobs: JobResult[], over: Partial<RunSummary> = {}): RunSummary {
  return { version: 1, runId: 'r1', lab: 'lab', startedAt: '2026-11-24T00:00:00Z', finishedAt: '2026-11-24T00:10:00Z', jobs, ...over };
}
