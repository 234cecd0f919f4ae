// The history of runs as an inline SVG bar chart (one stacked bar per run: how many jobs
// passed, diverged, hung, errored, were skipped) and a table of the same numbers. Used by
// report.html for the run's lab and by the published index for every lab.
import { esc, formatDate, formatDuration, VERDICT_LOOK } from './html-style.ts';
import { VERDICTS } from './summary.ts';
import type { RunRow } from './trends.ts';

/** At most this many bars: beyond it a chart stops being readable; the table has the rest. */
const MAX_BARS = 40;

export interface HistoryOptions {
  /** Where each run's report is, to link bars and rows; none in a report of a single run. */
  linkOf?: (runId: string) => string | undefined;
  /** How many table rows (newest first). */
  tableRows?: number;
  /** What the highlighted run is called in the table: "this run" in a report, "latest" in the index. */
  currentLabel?: string;
}

export function renderHistoryChart(allRuns: readonly RunRow[], currentRunId: string | undefined, options: HistoryOptions = {}): string {
  const runs = allRuns.slice(-MAX_BARS);
  const barW = 22;
  const gap = 8;
  const chartH = 120;
  const left = 36;
  const width = left + runs.length * (barW + gap) + 90; // room for the last rotated run label
  const height = chartH + 104; // rotated run labels hang below the bars
  const max = Math.max(1, ...runs.map((r) => r.counts.total));
  const parts: string[] = [];
  for (const frac of [0, 0.5, 1]) {
    const y = 10 + chartH * (1 - frac);
    parts.push(`<line x1="${left - 4}" y1="${y}" x2="${width}" y2="${y}" stroke="#e3e7eb"/><text x="${left - 8}" y="${y + 4}" font-size="10" text-anchor="end" fill="#8b949e">${Math.round(max * frac)}</text>`);
  }
  runs.forEach((r, i) => {
    const x = left + i * (barW + gap);
    let y = 10 + chartH;
    const segs: string[] = [];
    for (const v of ['pass', 'skipped', 'error', 'hang', 'diverge'] as const) {
      const n = r.counts[v];
      if (n === 0) continue;
      const h = (n / max) * chartH;
      y -= h;
      segs.push(`<rect x="${x}" y="${y.toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${v === 'pass' ? '#3fa35a' : VERDICT_LOOK[v].fg}" fill-opacity="${v === 'skipped' ? 0.35 : 0.9}"/>`);
    }
    const tip = `${r.runId} (${formatDate(r.startedAt)}): ${VERDICTS.map((v) => `${r.counts[v]} ${VERDICT_LOOK[v].word}`).join(', ')}`;
    const current = r.runId === currentRunId;
    const outline = current ? `<rect x="${x - 3}" y="6" width="${barW + 6}" height="${chartH + 8}" fill="none" stroke="#2457a6" stroke-width="2" rx="3"/>` : '';
    const mark = r.exitCode === 0 ? '✓' : r.exitCode === 1 ? '✗' : '!';
    const label = `<text x="${x + barW / 2}" y="${chartH + 26}" font-size="11" text-anchor="middle" fill="${r.exitCode === 0 ? '#0f5323' : r.exitCode === 1 ? '#8b1a10' : '#3d3480'}" font-weight="700">${mark}</text>` +
      `<text x="${x + barW / 2}" y="${chartH + 38}" font-size="9.5" fill="${current ? '#2457a6' : '#5b6572'}" font-weight="${current ? 700 : 400}" transform="rotate(40 ${x + barW / 2} ${chartH + 38})">${esc(shortRunLabel(r.runId))}</text>`;
    const link = options.linkOf?.(r.runId);
    const group = `<g><title>${esc(tip)}</title>${outline}${segs.join('')}${label}</g>`;
    parts.push(link ? `<a href="${esc(link)}">${group}</a>` : group);
  });
  const svg = `<div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Jobs per verdict in each run">${parts.join('')}</svg></div>`;
  const key = (['pass', 'diverge', 'hang', 'error', 'skipped'] as const)
    .map((v) => `<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${v === 'pass' ? '#3fa35a' : VERDICT_LOOK[v].fg}" fill-opacity="${v === 'skipped' ? 0.35 : 0.9}"/></svg> ${VERDICT_LOOK[v].word}</span>`)
    .join('');
  return `${svg}<div class="legend">${key}<span>✓ ✗ ! under a bar: the run passed, failed, or had infrastructure errors</span></div>${runTable(allRuns, currentRunId, options)}`;
}

/** Run ids of nightlies are long; the chart shows their last 14 characters. */
function shortRunLabel(runId: string): string {
  return runId.length > 14 ? `…${runId.slice(-13)}` : runId;
}

function runTable(allRuns: readonly RunRow[], currentRunId: string | undefined, options: HistoryOptions): string {
  const rows = [...allRuns].reverse().slice(0, options.tableRows ?? 10);
  const body = rows
    .map((r) => {
      const link = options.linkOf?.(r.runId);
      const name = link ? `<a href="${esc(link)}">${esc(r.runId)}</a>` : esc(r.runId);
      const status = r.exitCode === 0 ? '✓ passed' : r.exitCode === 1 ? '✗ failed' : '! infra errors';
      const cur = r.runId === currentRunId ? ` <b>(${esc(options.currentLabel ?? 'this run')})</b>` : '';
      const took = formatDuration(Date.parse(r.finishedAt) - Date.parse(r.startedAt));
      return `<tr><td>${name}${cur}</td><td>${esc(r.lab)}</td><td>${esc(formatDate(r.startedAt))}</td><td>${esc(took)}</td><td>${status}</td>${VERDICTS.map((v) => `<td class="num">${r.counts[v]}</td>`).join('')}<td class="num">${r.counts.quarantined}</td></tr>`;
    })
    .join('\n');
  const head = VERDICTS.map((v) => `<th>${VERDICT_LOOK[v].symbol} ${VERDICT_LOOK[v].word}</th>`).join('');
  return `<table class="plain runs"><thead><tr><th>run</th><th>lab</th><th>started</th><th>took</th><th>result</th>${head}<th>⚑ quarantined</th></tr></thead><tbody>${body}</tbody></table>`;
}
