import { describe, expect, it } from 'vitest';
import { cellId } from '../../src/report/summary.ts';
import { cellRowsOf, changedInRun, computeTrends, flakyAcrossRuns, RECENT, runRowOf } from '../../src/report/trends.ts';
import { fixtureSummary, job, summaryOf } from './support/fixtures.ts';

const at = (day: number) => `2026-11-${String(day).padStart(2, '0')}T00:00:00Z`;
const cell = (scenario: string) => cellId({ hostBuild: '10.0.26100.1', guest: 'ubuntu-24.04', scenario });

function runOf(id: string, day: number, verdicts: Record<string, 'pass' | 'diverge' | 'hang'>, lab = 'lab') {
  return summaryOf(
    Object.entries(verdicts).map(([scenario, verdict], i) => job({ jobId: `${id}-${i}`, scenario, verdict, divergenceClass: verdict === 'diverge' ? 'lost' : undefined })),
    { runId: id, lab, startedAt: at(day), finishedAt: at(day) },
  );
}

function trendsOf(current: ReturnType<typeof runOf>, past: ReturnType<typeof runOf>[]) {
  return computeTrends(current, past.map(runRowOf), past.flatMap(cellRowsOf));
}

describe('computeTrends', () => {
  it('says since which run a cell is in its state, and what it was before', () => {
    const runs = [runOf('r1', 1, { a: 'pass' }), runOf('r2', 2, { a: 'diverge' }), runOf('r3', 3, { a: 'diverge' })];
    const t = trendsOf(runOf('r4', 4, { a: 'diverge' }), runs);
    expect(t.cells.get(cell('a'))).toMatchObject({ since: 'r2', sinceStartedAt: at(2), runsInState: 3, previous: { runId: 'r1', verdict: 'pass', divergenceClass: null } });
    expect(t.cells.get(cell('a'))!.recent!.map((r) => `${r.runId}:${r.verdict}`)).toEqual(['r1:pass', 'r2:diverge', 'r3:diverge', 'r4:diverge']);
    expect(changedInRun(t.cells.get(cell('a')), 'r4')).toBe(false);
  });

  it('marks a cell that changed in this run', () => {
    const t = trendsOf(runOf('r2', 2, { a: 'pass' }), [runOf('r1', 1, { a: 'diverge' })]);
    expect(t.cells.get(cell('a'))).toMatchObject({ since: 'r2', runsInState: 1, previous: { runId: 'r1', verdict: 'diverge' } });
    expect(changedInRun(t.cells.get(cell('a')), 'r2')).toBe(true);
  });

  it('treats a new divergence class as a change', () => {
    const r1 = runOf('r1', 1, { a: 'diverge' });
    const r2 = runOf('r2', 2, { a: 'diverge' });
    r2.jobs[0]!.divergenceClass = 'duplicated';
    expect(trendsOf(r2, [r1]).cells.get(cell('a'))?.previous).toEqual({ runId: 'r1', verdict: 'diverge', divergenceClass: 'lost' });
  });

  it('steps over runs that did not run the cell', () => {
    const runs = [runOf('r1', 1, { a: 'pass' }), runOf('r2', 2, { a: 'diverge' }), runOf('r3', 3, { b: 'pass' })];
    expect(trendsOf(runOf('r4', 4, { a: 'diverge' }), runs).cells.get(cell('a'))).toMatchObject({ since: 'r2', runsInState: 2 });
  });

  it('ignores other labs and later runs', () => {
    const runs = [runOf('x1', 1, { a: 'pass' }, 'other-lab'), runOf('r1', 2, { a: 'diverge' }), runOf('r9', 9, { a: 'pass' })];
    const t = trendsOf(runOf('r5', 5, { a: 'diverge' }), runs);
    expect(t.cells.get(cell('a'))).toMatchObject({ since: 'r1', sinceStartedAt: at(2), runsInState: 2, previous: undefined });
    expect(t.runs.map((r) => r.runId)).toEqual(['r1', 'r5']);
  });

  it('has no previous state for a cell that never ran before', () => {
    const t = trendsOf(runOf('r1', 1, { a: 'pass' }), []);
    expect(t.cells.get(cell('a'))).toEqual({ since: 'r1', sinceStartedAt: at(1), runsInState: 1, previous: undefined, recent: [{ runId: 'r1', verdict: 'pass', divergenceClass: null }] });
    expect(changedInRun(t.cells.get(cell('a')), 'r1')).toBe(false);
  });

  it('keeps the last runs of each cell, and calls a cell flaky when it went back and forth', () => {
    const states: Array<'pass' | 'diverge'> = ['pass', 'pass', 'diverge', 'pass', 'diverge', 'pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'diverge'];
    const runs = states.map((v, i) => runOf(`r${String(i + 1).padStart(2, '0')}`, i + 1, { a: v }));
    const t = trendsOf(runs.at(-1)!, runs.slice(0, -1)).cells.get(cell('a'))!;
    expect(t.recent).toHaveLength(RECENT);
    expect(t.recent!.map((r) => r.verdict)).toEqual(states.slice(-RECENT));
    expect(flakyAcrossRuns(t)).toBe(true);
    // A regression (one change) is not flakiness, nor is a cell that always fails.
    const once = [runOf('r1', 1, { a: 'pass' }), runOf('r2', 2, { a: 'pass' })];
    expect(flakyAcrossRuns(trendsOf(runOf('r3', 3, { a: 'diverge' }), once).cells.get(cell('a'))!)).toBe(false);
    const always = [runOf('r1', 1, { a: 'diverge' }), runOf('r2', 2, { a: 'diverge' })];
    expect(flakyAcrossRuns(trendsOf(runOf('r3', 3, { a: 'diverge' }), always).cells.get(cell('a'))!)).toBe(false);
  });

  it('reads the fixture nightlies: the lost migration diverges since 11-21, the spurious checkpoint is fixed', () => {
    const past = [fixtureSummary('2026-11-20-nightly'), fixtureSummary('2026-11-21-nightly')];
    const t = computeTrends(fixtureSummary(), past.map(runRowOf), past.flatMap(cellRowsOf));
    const lost = t.cells.get(cellId({ hostBuild: '10.0.26100.1742', guest: 'ubuntu-24.04', scenario: 'live-migrate-ring-full' }));
    expect(lost).toMatchObject({ since: '2026-11-21-nightly', runsInState: 2, previous: { runId: '2026-11-20-nightly', verdict: 'pass' } });
    const fixed = t.cells.get(cellId({ hostBuild: '10.0.20348.2700', guest: 'debian-12', scenario: 'checkpoint-apply-discards-future' }));
    expect(fixed).toMatchObject({ since: '2026-11-22-nightly', previous: { verdict: 'diverge', divergenceClass: 'spurious' } });
  });
});
