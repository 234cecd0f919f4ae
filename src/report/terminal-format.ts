// Pure formatters for terminal output. They take a Screen ({ color, width }) instead of
// reading the terminal, so the same text serves a TTY (colour, one status line rewritten in
// place), a log file (plain lines) and tests. The CLI decides the Screen once.
import { isFailing, isQuarantineLive, summarize, type JobResult, type JobSpec, type RunSummary, type Verdict } from './summary.ts';

export interface Screen {
  color: boolean;
  /** Columns available; lines are cut to fit so a status line never wraps. */
  width: number;
}

export interface Progress {
  total: number;
  done: number;
  running: number;
  failed: number;
  elapsedMs: number;
}

const ANSI: Readonly<Record<string, string>> = { red: '31', green: '32', yellow: '33', magenta: '35', dim: '2', bold: '1' };

function paint(screen: Screen, style: keyof typeof ANSI, text: string): string {
  return screen.color ? `\u001b[${ANSI[style]}m${text}\u001b[0m` : text;
}

const VERDICT_STYLE: Readonly<Record<Verdict, keyof typeof ANSI>> = {
  pass: 'green', diverge: 'red', hang: 'yellow', error: 'magenta', skipped: 'dim',
};
const SYMBOL: Readonly<Record<Verdict, string>> = { pass: '✓', diverge: '✗', hang: '◔', error: '!', skipped: '-' };

/** 65_000 -> "1:05"; 3_723_000 -> "1:02:03". */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Time left if the remaining jobs take as long as the finished ones did; unknown before the first. */
export function estimateRemainingMs(p: Progress): number | undefined {
  if (p.done === 0 || p.total <= p.done) return p.total <= p.done ? 0 : undefined;
  return (p.elapsedMs / p.done) * (p.total - p.done);
}

/** Cuts plain text to `width` columns (before any colour is added), marking the cut. */
export function fit(text: string, width: number): string {
  const chars = [...text];
  if (width <= 0 || chars.length <= width) return text;
  return `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** "12/40 done · 2 running · 1 failed · 0:42 elapsed · ~1:10 left" */
export function formatProgress(p: Progress, screen: Screen): string {
  const left = estimateRemainingMs(p);
  const parts = [
    `${p.done}/${p.total} done`,
    `${p.running} running`,
    `${p.failed} failed`,
    `${formatClock(p.elapsedMs)} elapsed`,
    left === undefined ? 'estimating…' : `~${formatClock(left)} left`,
  ];
  const plain = fit(parts.join(' · '), screen.width);
  if (!screen.color || p.failed === 0) return plain;
  // Colour only the failure count, after fitting, so the cut never splits an escape code.
  const failedText = `${p.failed} failed`;
  return plain.includes(failedText) ? plain.replace(failedText, paint(screen, 'red', failedText)) : plain;
}

function verdictText(r: JobResult): string {
  const cls = r.divergenceClass && r.verdict !== 'pass' ? ` (${r.divergenceClass})` : '';
  return `${SYMBOL[r.verdict]} ${r.verdict}${cls}`;
}

/** One finished job: "✗ diverge (lost)  save-inflight · hv-01 10.0.26100 / ubuntu-24.04 · seed 7 · 1.2 s" */
export function formatJobLine(job: JobSpec, r: JobResult, screen: Screen, position?: { index: number; total: number }): string {
  // The result's build: the one read from the host where the bench read it (summary.json's), else the plan's label.
  const where = `${job.scenario} · ${r.host} ${r.hostBuild} / ${job.guest} · seed ${job.seed}`;
  const d = r.durationsMs;
  const secs = (Math.max(d.real ?? 0, d.emulator ?? 0) + (d.check ?? 0)) / 1000;
  const prefix = position ? `[${position.index}/${position.total}] ` : '';
  const quarantined = r.quarantined && isFailing(r.verdict) ? ' [quarantined]' : '';
  const head = verdictText(r).padEnd(20);
  const tail = `${where} · ${secs.toFixed(1)} s${quarantined}${r.message && r.verdict !== 'pass' ? ` — ${r.message}` : ''}`;
  const plain = fit(`${prefix}${head} ${tail}`, screen.width);
  if (!screen.color) return plain;
  const cut = prefix.length + head.length;
  return `${plain.slice(0, prefix.length)}${paint(screen, VERDICT_STYLE[r.verdict], plain.slice(prefix.length, cut))}${plain.slice(cut)}`;
}

/**
 * The closing lines of a run: counts, the exit status, every unexcused failure with its
 * message in full (the job lines are cut to the width; this is where the whole text is
 * read) and where its evidence is, then where the reports are. Trace paths in the summary
 * are relative to the run directory: given `runDir`, they are printed under it.
 */
export function formatRunEnd(s: RunSummary, screen: Screen, files: readonly string[] = [], runDir?: string): string[] {
  const { counts, exitCode } = summarize(s.jobs, s.startedAt);
  const elapsed = Date.parse(s.finishedAt) - Date.parse(s.startedAt);
  const status = exitCode === 0 ? paint(screen, 'green', 'PASSED') : exitCode === 1 ? paint(screen, 'red', 'FAILED') : paint(screen, 'magenta', 'INFRASTRUCTURE ERRORS');
  const lines = [
    `${status} run ${s.runId} (${s.lab}) in ${formatClock(Number.isNaN(elapsed) ? 0 : elapsed)}: ` +
      `${counts.pass} passed, ${counts.diverge} diverged, ${counts.hang} hung, ${counts.error} errors, ${counts.skipped} skipped` +
      (counts.quarantined ? `, ${counts.quarantined} quarantined` : ''),
  ];
  const under = (p: string): string => (runDir === undefined || p.startsWith('/') ? p : `${runDir.replace(/\/+$/, '')}/${p}`);
  for (const j of s.jobs) {
    if (!isFailing(j.verdict) || isQuarantineLive(j, s.startedAt)) continue;
    lines.push(`  ${formatJobLine(j, { ...j, message: undefined }, { ...screen, width: Math.max(0, screen.width - 2) })}`);
    if (j.message) lines.push(`      ${j.message}`);
    if (j.firstUnexplained) lines.push(`      at ${under(j.firstUnexplained.file)}:${j.firstUnexplained.line}`);
    else if (j.evidence.trace) lines.push(`      trace ${under(j.evidence.trace)}`);
  }
  for (const f of files) lines.push(`  ${f}`);
  return lines;
}
