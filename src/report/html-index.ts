// index.html of a published site: every indexed run, grouped by lab, newest first, each
// linking to its report, with the history chart per lab. Pure.
import { renderHistoryChart } from './html-history.ts';
import { esc, formatDate, page } from './html-style.ts';
import type { RunRow } from './trends.ts';

export function renderSiteIndex(runs: readonly RunRow[], linkOf: (runId: string) => string | undefined, options: { evidenceCap?: string } = {}): string {
  const labs = [...new Set(runs.map((r) => r.lab))].sort();
  const latest = [...runs].sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt))[0];
  const sections = labs.map((lab) => {
    const mine = runs.filter((r) => r.lab === lab);
    const last = mine[mine.length - 1];
    const lastLink = last ? linkOf(last.runId) : undefined;
    const head = last
      ? `<p>Latest: ${lastLink ? `<a href="${esc(lastLink)}">${esc(last.runId)}</a>` : esc(last.runId)} (${esc(formatDate(last.startedAt))}) — ${last.exitCode === 0 ? '✓ passed' : last.exitCode === 1 ? '✗ divergences found' : '! infrastructure errors'}</p>`
      : '';
    return `<section id="lab-${esc(lab)}"><h2>Lab ${esc(lab)} (${mine.length} run${mine.length === 1 ? '' : 's'})</h2>${head}${renderHistoryChart(mine, last?.runId, { linkOf, tableRows: mine.length, currentLabel: 'latest' })}</section>`;
  });
  const body = `
<header class="top"><div class="inner"><h1>VMBus save/restore compatibility: all runs</h1>
<div class="meta">${runs.length} run(s) in ${labs.length} lab(s)${latest ? ` · latest ${esc(formatDate(latest.startedAt))}` : ''}</div></div></header>
<main>
${sections.length ? sections.join('\n') : '<section><p>No runs have been indexed yet.</p></section>'}
${options.evidenceCap ? `<section id="evidence"><h2>Evidence</h2><p>Each run's report links the evidence of its failing jobs (minimised scenarios, traces, host logs), copied beside it up to <b>${esc(options.evidenceCap)} per run</b>, smallest kinds first. A file that would pass the cap stays in the run directory only, and the report says so beside its path.</p></section>` : ''}
<footer>Published by the VMBus bench. Each report is one self-contained page; its evidence is in the same folder.</footer>
</main>`;
  return page('VMBus compatibility: all runs', body);
}
