// The parts of report.html about failures: the infrastructure summary ("day one": one box
// per cause, which hosts, why, what to do) and the divergences grouped by cause, each group
// collapsible with a count, split by host build, filterable by class, build, guest and
// scenario. Pure.
import { groupFailures, groupInfraErrors, type FailureGroup, type InfraCause } from './failure-groups.ts';
import { anchorOf, renderCard, type CardContext } from './html-card.ts';
import { esc, verdictPill } from './html-style.ts';
import { naturalCompare } from './matrix.ts';
import { isQuarantineLive, type JobResult } from './summary.ts';

/** Up to this many failures, every group starts open; above it, all start closed. */
const OPEN_UP_TO = 12;

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "2 hosts failed preflight: reachable: …", or "1 host: <what went wrong>". */
function headline(c: InfraCause): string {
  const hosts = plural(c.hosts.length, 'host');
  return c.cause.startsWith('preflight: ') ? `${hosts} failed preflight: ${c.cause.slice('preflight: '.length)}` : `${hosts}: ${c.cause}`;
}

function infraBox(c: InfraCause, anchored: Set<string>, lab: string, runId: string): string {
  const rows = c.jobs
    .map((j) => {
      // A job whose hosts failed for two reasons is listed under both; its anchor is in the first.
      const id = anchored.has(j.jobId) ? '' : ` id="${esc(anchorOf(j.jobId))}"`;
      anchored.add(j.jobId);
      return `<tr${id}><td>${esc(j.scenario)}</td><td>${esc(j.host)}</td><td>${esc(j.hostBuild)}</td><td>${esc(j.guest)}</td><td>${j.seed}</td><td>${esc(j.jobId)}</td></tr>`;
    })
    .join('');
  return `<div class="infra-box" id="${esc(c.id)}">
<h3>${verdictPill('error', plural(c.jobs.length, 'job'))} ${esc(headline(c))}</h3>
<dl><dt>Hosts</dt><dd>${c.hosts.map((h) => `<code>${esc(h)}</code>`).join(' ')}</dd>
<dt>Why</dt><dd><code class="wrap">${esc(c.example)}</code></dd>
<dt>What to do</dt><dd>${esc(c.advice)} Then finish the run: <code>bench nightly --lab LAB.yaml --resume ${esc(runId)}</code> (LAB.yaml: the inventory of lab ${esc(lab)}).</dd></dl>
<details class="jobs"><summary>The ${esc(plural(c.jobs.length, 'job'))} it stopped</summary><table class="plain"><thead><tr><th>scenario</th><th>host</th><th>host build</th><th>guest</th><th>seed</th><th>job</th></tr></thead><tbody>${rows}</tbody></table></details>
</div>`;
}

/** The infrastructure section, or '' when every job could be judged. */
export function renderInfra(jobs: readonly JobResult[], lab: string, runId: string): string {
  const causes = groupInfraErrors(jobs);
  if (causes.length === 0) return '';
  const total = jobs.filter((j) => j.verdict === 'error').length;
  const hosts = new Set(causes.flatMap((c) => c.hosts));
  const anchored = new Set<string>();
  return `<section id="infra"><h2>Infrastructure: ${esc(plural(total, 'job'))} could not run (${esc(plural(hosts.size, 'host'))}, ${esc(plural(causes.length, 'cause'))})</h2>
<p class="since">These jobs say nothing about VMBus: the bench could not run or judge them. One box per cause.</p>
${causes.map((c) => infraBox(c, anchored, lab, runId)).join('\n')}</section>`;
}

function options(values: Iterable<string>): string {
  return [...new Set(values)].sort(naturalCompare).map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join('');
}

function filters(jobs: readonly JobResult[]): string {
  const sel = (key: string, label: string, values: Iterable<string>) =>
    `<label>${esc(label)} <select data-filter="${key}"><option value="">all</option>${options(values)}</select></label>`;
  return `<div class="filters">${sel('class', 'class', jobs.map((j) => j.divergenceClass ?? j.verdict))}${sel('build', 'host build', jobs.map((j) => j.hostBuild))}${sel('guest', 'guest', jobs.map((j) => j.guest))}${sel('scenario', 'scenario', jobs.map((j) => j.scenario))}<span id="filter-count" class="since">all ${jobs.length} shown</span><span class="buttons"><button type="button" data-open="all">open all</button><button type="button" data-open="none">close all</button></span></div>`;
}

const HELP = `<details class="help"><summary>How to read a failure</summary><dl>
<dt><code>ch 0</code></dt><dd>the channel: the VMBus channel instance within the VM (a device may offer several).</dd>
<dt><code>g2h</code> / <code>h2g</code></dt><dd>the direction: guest to host (the guest driver's requests to the VSP) or host to guest (transactions the VSP sends).</dd>
<dt><code>tx 5</code></dt><dd>the transaction id: unique per channel and direction, and kept across save, restore and migration, so <code>h2g tx 5</code> names one packet through its whole life. Messages write the three together as <code>ch/dir/tx</code>: <code>0/g2h/1</code> is channel 0, guest to host, transaction 1.</dd>
<dt><code>status</code></dt><dd>an NTSTATUS in 8 hex digits, with its name where the bench knows it: <code>C0000001 STATUS_UNSUCCESSFUL</code>.</dd>
<dt><code>digest</code>, <code>saveDigest</code></dt><dd>hex digests of payload and SaveBuf bytes, shown in full.</dd>
<dt>≠</dt><dd>marks a field whose observed value is not what the model expected there.</dd>
<dt>Commands</dt><dd>run from the run directory (evidence paths are relative to it). <code>bench check</code> checks the kept traces again; <code>bench emulate</code> runs the scenario again on the emulator; <code>bench explore</code> tries every save point.</dd>
</dl></details>`;

function groupBlock(g: FailureGroup, open: boolean, ctx: CardContext): string {
  const c = g.cause;
  const quarantined = g.jobs.filter((j) => isQuarantineLive(j, ctx.asOf)).length;
  const builds = g.builds
    .map((b) => `<details class="bgroup" data-count="${b.jobs.length}"${open ? ' open' : ''}><summary>host build <b>${esc(b.hostBuild)}</b>: ${esc(plural(b.jobs.length, 'failure'))}<span class="shown"></span></summary>${b.jobs.map((j) => renderCard(j, ctx)).join('\n')}</details>`)
    .join('\n');
  const guests = new Set(g.jobs.map((j) => j.guest)).size;
  const scenarios = new Set(g.jobs.map((j) => j.scenario)).size;
  return `<details class="group" id="${esc(g.id)}" data-count="${g.jobs.length}"${open ? ' open' : ''}><summary><span class="count">${g.jobs.length}</span>${verdictPill(g.jobs[0]!.verdict, c.divergenceClass)} <span class="prop">${esc(c.property)}</span> <span class="pat">at <code>${esc(c.pattern)}</code></span><span class="shown"></span><span class="since"> · ${esc(plural(g.builds.length, 'host build'))}, ${esc(plural(guests, 'guest'))}, ${esc(plural(scenarios, 'scenario'))}${quarantined ? `, ${quarantined} quarantined` : ''}</span></summary>${builds}</details>`;
}

/** The divergences and hangs, grouped by cause. */
export function renderFailures(jobs: readonly JobResult[], ctx: CardContext): string {
  const groups = groupFailures(jobs, ctx.asOf);
  const total = groups.reduce((n, g) => n + g.jobs.length, 0);
  if (total === 0) return '<section id="divergences"><h2>Failures (0)</h2><p>No divergences or hangs in this run.</p></section>';
  const open = total <= OPEN_UP_TO;
  const failing = groups.flatMap((g) => g.jobs);
  return `<section id="divergences"><h2>Failures: ${esc(plural(total, 'divergence or hang', 'divergences and hangs'))} in ${esc(plural(groups.length, 'group'))}</h2>
<p class="since">Grouped by cause (class, failed property and the first unexplained event's kind), then by host build. Largest group first.</p>
${HELP}
${filters(failing)}
${groups.map((g) => groupBlock(g, open, ctx)).join('\n')}
</section>`;
}
