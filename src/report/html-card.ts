// One failure card of report.html: what failed, the values that differ in full (statuses
// named), the first unexplained event, the packet timeline, the cell's history, copyable
// commands that reproduce it, the minimised scenario inline, and the evidence. Pure.
import { fieldText, statusesIn, valueDiff } from './event-values.ts';
import { esc, formatDuration, verdictPill, VERDICT_LOOK } from './html-style.ts';
import { renderTimeline } from './html-timeline.ts';
import { jobSeconds } from './junit-reporter.ts';
import { cellLabel, type Matrix } from './matrix.ts';
import { choicesNote, commandLine, reproCommands } from './repro.ts';
import { cellId, describeJob, isFailing, isQuarantineLive, type JobResult } from './summary.ts';
import { flakyAcrossRuns, type CellTrend, type Trends } from './trends.ts';
import { stringifyWithIds } from '../trace/json-ids.ts';

/** What every card of one report shares. */
export interface CardContext {
  runId: string;
  asOf: string;
  matrix: Matrix;
  trends: Trends | undefined;
  /** Whether an evidence path is linked (false: shown as text, with `unlinkedNote`). */
  linkEvidence: (path: string) => boolean;
  unlinkedNote: (path: string) => string;
  /** Minimised scenarios' text by evidence path, to show inline (the reporter reads them). */
  inline: ReadonlyMap<string, string>;
}

export function anchorOf(jobId: string): string {
  return `job-${jobId}`;
}

/** Evidence paths are relative to the run directory; each segment is encoded on its own. */
export function evidenceHref(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function evidenceItem(label: string, path: string | undefined, ctx: CardContext): string {
  if (!path) return '';
  const linked = ctx.linkEvidence(path);
  return `<li>${esc(label)}: ${linked ? `<a href="${esc(evidenceHref(path))}"><code>${esc(path)}</code></a>` : `<code>${esc(path)}</code> <span class="since">(${esc(ctx.unlinkedNote(path))})</span>`}</li>`;
}

export function trendText(t: CellTrend | undefined): string {
  if (!t) return '';
  const before = t.previous ? `; before: ${t.previous.divergenceClass ?? t.previous.verdict} in ${t.previous.runId}` : '';
  return `since ${t.since} (${t.runsInState} run${t.runsInState === 1 ? '' : 's'})${before}`;
}

/** The cell's recent runs as a strip of verdict symbols, oldest first. */
function recentStrip(t: CellTrend): string {
  const recent = t.recent ?? [];
  if (recent.length < 2) return '';
  const marks = recent.map((r) => `<span class="pill v-${r.verdict}" title="${esc(`${r.runId}: ${cellLabel({ verdict: r.verdict, divergenceClass: r.divergenceClass ?? undefined })}`)}">${VERDICT_LOOK[r.verdict].symbol}</span>`).join('');
  return `<span class="strip" aria-label="last ${recent.length} runs, oldest first">${marks}</span>`;
}

/** Since which run and on which builds the cell's row fails, and whether it is flaky. */
function historyLines(j: JobResult, ctx: CardContext): string[] {
  const lines: string[] = [];
  const trend = ctx.trends?.cells.get(cellId(j));
  if (trend) {
    const text = trend.previous && trend.since === ctx.runId
      ? `New in this run (was ${esc(trend.previous.divergenceClass ?? trend.previous.verdict)} in ${esc(trend.previous.runId)}).`
      : `In this state ${esc(trendText(trend))}.`;
    lines.push(`${text} ${recentStrip(trend)}${flakyAcrossRuns(trend) ? ' <b class="flaky">flaky across runs</b>' : ''}`);
  }
  const m = ctx.matrix;
  const row = m.hostBuilds.map((b) => m.cells.get(cellId({ hostBuild: b, guest: j.guest, scenario: j.scenario }))).filter((c) => c !== undefined);
  const failing = row.filter((c) => isFailing(c.verdict)).map((c) => c.hostBuild);
  const passing = row.filter((c) => c.verdict === 'pass').map((c) => c.hostBuild);
  if (row.length > 1) {
    lines.push(`On ${esc(j.guest)}, this scenario fails on host build${failing.length === 1 ? '' : 's'} ${esc(failing.join(', ') || 'none')}${passing.length ? ` and passes on ${esc(passing.join(', '))}` : ''}.`);
  }
  const cell = m.cells.get(cellId(j));
  if (cell && cell.jobs.length > 1) {
    const seeds = (pred: (x: JobResult) => boolean) => [...new Set(cell.jobs.filter(pred).map((x) => x.seed))].sort((a, b) => a - b);
    const bad = seeds((x) => isFailing(x.verdict));
    const good = seeds((x) => x.verdict === 'pass');
    if (bad.length && good.length) lines.push(`<b class="flaky">Flaky across seeds</b>: fails with seed${bad.length === 1 ? '' : 's'} ${bad.join(', ')}; passes with ${good.join(', ')}.`);
  }
  return lines;
}

function diffTable(j: JobResult): string {
  const f = j.firstUnexplained;
  if (!f) return '';
  const d = valueDiff(f.event as unknown as Record<string, unknown>, j.expected ?? []);
  const heads = d.alternatives.map((_, i) => `<th>model expected${d.alternatives.length > 1 ? ` (${i + 1})` : ''}</th>`).join('');
  const rows = d.rows
    .map((r) => `<tr${r.differs ? ' class="differs"' : ''}><th>${esc(r.field)}${r.differs ? ' ≠' : ''}</th><td><code>${esc(r.observed ?? '–')}</code></td>${r.expected.map((e) => `<td><code>${esc(e ?? '(any)')}</code></td>`).join('')}</tr>`)
    .join('');
  const note = d.alternatives.length > 0 ? ''
    : (j.expected?.length ?? 0) === 0 ? '<p class="since">The checker named no expected alternative for this event (the property checker finds a broken rule, not a missing choice); the observed values follow in full.</p>'
    : '<p class="since">None of the model\'s alternatives is an event of this kind; the observed values follow in full, the alternatives below.</p>';
  return `<h4>The values at the first unexplained event</h4>${note}<table class="plain diff"><thead><tr><th>field</th><th>observed</th>${heads}</tr></thead><tbody>${rows}</tbody></table>`;
}

function reproBlock(j: JobResult): string {
  const id = anchorOf(j.jobId);
  const cmds = reproCommands(j)
    .map((c, i) => `<div class="cmd"><span class="since">${esc(c.purpose)}:</span><div class="cmdline"><pre id="${esc(`${id}-cmd-${i}`)}">${esc(commandLine(c.argv))}</pre><button type="button" data-copy="${esc(`${id}-cmd-${i}`)}">copy</button></div></div>`)
    .join('');
  const note = choicesNote(j);
  return `<h4>Reproduce (from the run directory)</h4>${cmds}${note ? `<p class="since">${esc(note)}</p>` : ''}`;
}

export function renderCard(j: JobResult, ctx: CardContext): string {
  const quarantine = isQuarantineLive(j, ctx.asOf) ? `<span class="badge q">quarantined until ${esc(j.quarantined!.until)}: ${esc(j.quarantined!.reason)}</span>` : '';
  const d = j.durationsMs;
  const times = [d.real !== undefined ? `real ${formatDuration(d.real)}` : '', d.emulator !== undefined ? `emulator ${formatDuration(d.emulator)}` : '', d.check !== undefined ? `check ${formatDuration(d.check)}` : '']
    .filter(Boolean).join(', ');
  const cls = j.divergenceClass ?? j.verdict;
  const parts: string[] = [
    `<article class="job v-${j.verdict}" id="${esc(anchorOf(j.jobId))}" data-job data-class="${esc(cls)}" data-build="${esc(j.hostBuild)}" data-guest="${esc(j.guest)}" data-scenario="${esc(j.scenario)}">`,
    `<h3>${verdictPill(j.verdict, j.divergenceClass ?? VERDICT_LOOK[j.verdict].word)} ${esc(j.scenario)} <span class="where">${esc(j.hostBuild)} / ${esc(j.guest)} · seed ${j.seed}</span>${quarantine}</h3>`,
    `<div class="where">${esc(describeJob(j))} · job ${esc(j.jobId)}${(j.attempts ?? 1) > 1 ? ` · ${j.attempts} attempts` : ''}${times ? ` · ${esc(times)} (${jobSeconds(j).toFixed(1)} s)` : ''}</div>`,
  ];
  const history = historyLines(j, ctx);
  if (history.length) parts.push(`<div class="history">${history.map((l) => `<div>${l}</div>`).join('')}</div>`);
  if (j.message) {
    parts.push(`<div class="msg">${esc(j.message)}</div>`);
    const named = statusesIn(j.message);
    if (named.length) parts.push(`<div class="since">Statuses above: ${named.map((s) => `<code>${esc(s)}</code>`).join(', ')}</div>`);
  }
  if (j.failedProperties?.length) parts.push(`<h4>Failed properties</h4><div class="props">${j.failedProperties.map((p) => `<span>${esc(p)}</span>`).join('')}</div>`);
  if (j.notChecked?.length) parts.push(`<h4>Not checked for this job</h4><ul>${j.notChecked.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  parts.push(diffTable(j));
  if (j.firstUnexplained) {
    const f = j.firstUnexplained;
    parts.push(`<h4>First unexplained event</h4><div><code>${esc(f.file)}:${f.line}</code></div><pre class="ev">${esc(stringifyWithIds(f.event))}</pre>`);
  }
  if (j.expected?.length) parts.push(`<h4>The model expected one of</h4><ul class="expected">${j.expected.map((e) => `<li><code>${esc(e.replace(/\bstatus=([0-9a-fA-F]{8})\b/g, (_, h: string) => `status=${fieldText('status', h)}`))}</code></li>`).join('')}</ul>`);
  if (j.timeline?.length) parts.push(`<h4>Packet states around it</h4>${renderTimeline(j.timeline, j.firstUnexplained?.event)}`);
  parts.push(reproBlock(j));
  const ev = j.evidence;
  const min = ev.minimizedScenario ? ctx.inline.get(ev.minimizedScenario) : undefined;
  if (min !== undefined) parts.push(`<h4>Minimised scenario</h4><pre class="scenario">${esc(min)}</pre>`);
  const items = [
    evidenceItem('minimised scenario', ev.minimizedScenario, ctx),
    evidenceItem('trace', ev.trace, ctx),
    evidenceItem('host trace', ev.hostTrace, ctx),
    evidenceItem('guest trace', ev.guestTrace, ctx),
    ...(ev.artefacts ?? []).map((a) => evidenceItem('host log / artefact', a, ctx)),
  ].join('');
  if (items) parts.push(`<h4>Evidence</h4><ul>${items}</ul>`);
  parts.push('</article>');
  return parts.join('\n');
}
