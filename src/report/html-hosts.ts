// The report's "Hosts" section: what the bench read from each host (src/lab/host-facts.ts)
// and the driver builds its jobs ran with (src/lab/deploy-drivers.ts), from the jobs'
// results. A build that differs from the inventory's label is a warning at the top of the
// report, not a footnote. Emulated runs record none of this, and get no section.
import { esc } from './html-style.ts';
import type { JobResult } from './summary.ts';

interface HostRow {
  host: string;
  osBuild: string | undefined;
  label: string | undefined;
  hyperv: string | undefined;
  kmcl: string | undefined;
  drivers: Map<string, string>;
  guests: Set<string>;
  warning: string | undefined;
}

export function hostRows(jobs: readonly JobResult[]): HostRow[] {
  const rows = new Map<string, HostRow>();
  for (const j of jobs) {
    if (!j.hostFacts && !j.drivers) continue;
    const r = rows.get(j.host) ?? { host: j.host, osBuild: undefined, label: undefined, hyperv: undefined, kmcl: undefined, drivers: new Map(), guests: new Set(), warning: undefined };
    const f = j.hostFacts;
    r.osBuild ??= f?.osBuild;
    r.label ??= f?.label;
    r.hyperv ??= f?.hypervVersion;
    r.kmcl ??= f?.kmclVersion;
    r.warning ??= f?.warning;
    if (f?.guestOs) r.guests.add(`${j.guest}: ${f.guestOs}`);
    for (const d of j.drivers ?? []) r.drivers.set(d.name, `${d.name} ${d.fileVersion ?? ''} ${d.sha256.slice(0, 12).toLowerCase()}${d.sourceCommit ? ` @${d.sourceCommit.slice(0, 10)}` : ''}`.replace(/ +/g, ' '));
    rows.set(j.host, r);
  }
  return [...rows.values()].sort((a, b) => a.host.localeCompare(b.host));
}

/** Warnings first (one line each), then one row per host; empty when no job recorded facts. */
export function renderHosts(jobs: readonly JobResult[]): string {
  const rows = hostRows(jobs);
  if (rows.length === 0) return '';
  const warnings = rows.filter((r) => r.warning).map((r) => `<p class="host-warning" role="alert" style="background:#fff4e5;border-left:4px solid #b45309;padding:.4em .8em">⚠ ${esc(r.warning!)}</p>`).join('\n');
  const cell = (v: string | undefined) => `<td>${v === undefined ? '<i>unknown</i>' : esc(v)}</td>`;
  const body = rows.map((r) => `<tr><th scope="row">${esc(r.host)}</th>${cell(r.osBuild)}${cell(r.label)}${cell(r.hyperv)}${cell(r.kmcl)}<td>${esc([...r.drivers.values()].join(', ') || '–')}</td><td>${esc([...r.guests].join(', ') || '–')}</td></tr>`).join('\n');
  return `<section id="hosts"><h2>Hosts</h2>
${warnings}
<table class="hosts"><thead><tr><th scope="col">host</th><th scope="col">build read</th><th scope="col">inventory label</th><th scope="col">Hyper-V (vmms.exe)</th><th scope="col">vmbkmcl.sys</th><th scope="col">drivers</th><th scope="col">guest OS</th></tr></thead>
<tbody>
${body}
</tbody></table></section>`;
}
