// Trends across runs, computed from the history index's rows. Pure: history.ts reads the
// rows, this file decides what they mean.
//
// A cell's state is its verdict plus its divergence class (lost -> duplicated is a change).
// "Since" is the first run of the unbroken streak of runs, ending at the current run, in
// which the cell was in its current state. Runs in which the cell did not run at all say
// nothing about it and are stepped over. Only runs of the same lab count: an emulated
// run and a lab run of the same cell answer different questions.
import { buildMatrix, sameState } from './matrix.ts';
import { summarize, type Counts, type RunSummary, type Verdict } from './summary.ts';

export interface RunRow {
  runId: string;
  lab: string;
  startedAt: string;
  finishedAt: string;
  counts: Counts;
  exitCode: number;
}

export interface CellRow {
  runId: string;
  cellId: string;
  verdict: Verdict;
  divergenceClass: string | null;
}

export interface CellTrend {
  /** The run since which the cell has been in its current state (maybe the current run). */
  since: string;
  sinceStartedAt: string;
  /** Runs (that ran the cell) in the current state, the current run included. */
  runsInState: number;
  /** The state before the streak, if the cell ran earlier. */
  previous?: { runId: string; verdict: Verdict; divergenceClass: string | null } | undefined;
  /** The cell's state in the last RECENT runs that ran it, oldest first, the current run last. */
  recent?: { runId: string; verdict: Verdict; divergenceClass: string | null }[] | undefined;
}

/** How many runs of a cell's past its trend keeps in `recent`. */
export const RECENT = 10;

/**
 * Flaky across runs: in its recent runs the cell both passed and failed, and changed state
 * at least twice (one change is a regression or a fix, not flakiness).
 */
export function flakyAcrossRuns(t: Pick<CellTrend, 'recent'>): boolean {
  const failing = (v: Verdict) => v === 'diverge' || v === 'hang';
  const recent = t.recent ?? [];
  let changes = 0;
  for (let i = 1; i < recent.length; i++) if (!sameState(recent[i - 1]!, recent[i]!)) changes++;
  return changes >= 2 && recent.some((r) => r.verdict === 'pass') && recent.some((r) => failing(r.verdict));
}

export interface Trends {
  /** Runs of this lab up to and including the current one, oldest first. */
  runs: RunRow[];
  cells: Map<string, CellTrend>;
}

/** Runs are ordered by start time, then by id (ids of one nightly sort by time too). */
export function runOrder(a: Pick<RunRow, 'startedAt' | 'runId'>, b: Pick<RunRow, 'startedAt' | 'runId'>): number {
  const t = Date.parse(a.startedAt) - Date.parse(b.startedAt);
  if (t !== 0 && !Number.isNaN(t)) return t;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}

export function runRowOf(s: RunSummary): RunRow {
  const { counts, exitCode } = summarize(s.jobs, s.startedAt);
  return { runId: s.runId, lab: s.lab, startedAt: s.startedAt, finishedAt: s.finishedAt, counts, exitCode };
}

export function cellRowsOf(s: RunSummary): CellRow[] {
  return [...buildMatrix(s.jobs, s.startedAt).cells.values()].map((c) => ({
    runId: s.runId,
    cellId: c.id,
    verdict: c.verdict,
    divergenceClass: c.divergenceClass ?? null,
  }));
}

/**
 * Trends for `current`, given what the index holds about other runs. The current run's
 * own rows are computed from its summary, so a stale or missing index entry for it does
 * not matter.
 */
export function computeTrends(current: RunSummary, pastRuns: readonly RunRow[], pastCells: readonly CellRow[]): Trends {
  const me = runRowOf(current);
  const earlier = pastRuns
    .filter((r) => r.lab === current.lab && r.runId !== current.runId && runOrder(r, me) < 0)
    .sort(runOrder);
  const position = new Map(earlier.map((r, i) => [r.runId, i]));
  // Newest first, per cell, so the walk back can stop at the first change.
  const byCell = new Map<string, CellRow[]>();
  for (const row of pastCells) {
    if (!position.has(row.runId)) continue;
    let list = byCell.get(row.cellId);
    if (!list) byCell.set(row.cellId, (list = []));
    list.push(row);
  }
  for (const list of byCell.values()) list.sort((a, b) => position.get(b.runId)! - position.get(a.runId)!);
  const startedAt = new Map(earlier.map((r) => [r.runId, r.startedAt]));

  const cells = new Map<string, CellTrend>();
  for (const row of cellRowsOf(current)) {
    let since = current.runId;
    let runsInState = 1;
    let previous: CellTrend['previous'];
    for (const old of byCell.get(row.cellId) ?? []) {
      if (!sameState(old, row)) {
        previous = { runId: old.runId, verdict: old.verdict, divergenceClass: old.divergenceClass };
        break;
      }
      since = old.runId;
      runsInState++;
    }
    const recent = (byCell.get(row.cellId) ?? []).slice(0, RECENT - 1).reverse().map((r) => ({ runId: r.runId, verdict: r.verdict, divergenceClass: r.divergenceClass }));
    recent.push({ runId: row.runId, verdict: row.verdict, divergenceClass: row.divergenceClass });
    cells.set(row.cellId, { since, sinceStartedAt: startedAt.get(since) ?? current.startedAt, runsInState, previous, recent });
  }
  return { runs: [...earlier, me], cells };
}

/** A cell changed in this run when it had an earlier state that differs. */
export function changedInRun(t: CellTrend | undefined, runId: string): boolean {
  return t !== undefined && t.since === runId && t.previous !== undefined;
}
