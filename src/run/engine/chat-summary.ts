// One paragraph about a finished run, for a chat message or an e-mail: the counts, what
// changed since the last run of the same lab (cells that broke, cells that were fixed,
// from the history's trends), what is still failing and since when, and where the report
// is. Pure: the caller reads the trends (report/history.ts) and passes them in.

import { cellId, isQuarantineLive, summarize, worstVerdict, type JobResult, type RunSummary, type Verdict } from '../../report/summary.ts';
import { changedInRun, type Trends } from '../../report/trends.ts';

const FAILING: ReadonlySet<Verdict> = new Set(['diverge', 'hang', 'error']);
const MAX_LISTED = 5;

export function chatSummary(s: RunSummary, trends: Trends | undefined, reportAt: string | undefined): string {
  const { counts, exitCode } = summarize(s.jobs, s.startedAt);
  const head = `${exitCode === 0 ? 'PASS' : exitCode === 1 ? 'FAIL' : 'LAB ERRORS'}: run ${s.runId} on ${s.lab}, ${counts.total} jobs: ${counts.pass} pass, ${counts.diverge} diverge, ${counts.hang} hang, ${counts.error} error${counts.quarantined ? ` (${counts.quarantined} excused by quarantine)` : ''}${counts.skipped ? `, ${counts.skipped} skipped` : ''}.`;
  const cells = new Map<string, { label: string; jobs: JobResult[] }>();
  for (const j of s.jobs) {
    const id = cellId(j);
    const c = cells.get(id) ?? { label: `${j.scenario} on ${j.hostBuild} / ${j.guest}`, jobs: [] };
    c.jobs.push(j);
    cells.set(id, c);
  }
  const parts = [head];
  const broke: string[] = [];
  const fixed: string[] = [];
  const still: string[] = [];
  for (const [id, c] of cells) {
    const v = worstVerdict(c.jobs.map((j) => j.verdict))!;
    const cls = c.jobs.find((j) => j.verdict === v)?.divergenceClass;
    const excused = FAILING.has(v) && c.jobs.filter((j) => FAILING.has(j.verdict)).every((j) => isQuarantineLive(j, s.startedAt));
    const now = `${v}${cls && v !== 'pass' ? ` (${cls})` : ''}${excused ? ' [quarantined]' : ''}`;
    const t = trends?.cells.get(id);
    if (changedInRun(t, s.runId)) {
      const was = `${t!.previous!.verdict}${t!.previous!.divergenceClass ? ` (${t!.previous!.divergenceClass})` : ''}`;
      (FAILING.has(v) ? broke : fixed).push(`${c.label}: ${was} -> ${now}`);
    } else if (FAILING.has(v)) {
      still.push(`${c.label}: ${now}${t && t.since !== s.runId ? ` since ${t.since}` : ''}`);
    }
  }
  if (!trends) parts.push('No history to compare with.');
  else if (broke.length === 0 && fixed.length === 0) {
    // The history holds this run alone: there is no last run to have changed since.
    const first = !trends.runs.some((r) => r.runId !== s.runId);
    parts.push(first ? `First run of ${s.lab}: nothing to compare with yet.` : 'No change since the last run.');
  }
  if (broke.length) parts.push(`Newly failing: ${list(broke)}.`);
  if (fixed.length) parts.push(`Fixed: ${list(fixed)}.`);
  if (still.length) parts.push(`Still failing: ${list(still)}.`);
  if (reportAt) parts.push(`Report: ${reportAt}`);
  return parts.join(' ');
}

function list(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join('; ');
  return items.length > MAX_LISTED ? `${shown}; and ${items.length - MAX_LISTED} more` : shown;
}
