// The report shows what was read from each host and the drivers its jobs ran with, and a
// build that differs from the inventory's label is a warning at the top.
import { describe, expect, it } from 'vitest';
import { renderHosts } from '../../src/report/html-hosts.ts';
import { renderReport } from '../../src/report/html-report.ts';
import type { JobResult, RunSummary } from '../../src/report/summary.ts';
import { parseSummary } from '../../src/report/summary-schema.ts';

const job = (over: Partial<JobResult>): JobResult => ({
  jobId: 'j', host: 'hv-a', hostBuild: '26100.4061', guest: 'Ubuntu 24.04', template: 'u', scenario: 's', seed: 1, verdict: 'pass', durationsMs: {}, evidence: {}, ...over,
});

describe('report hosts section', () => {
  it('lists the build read, the label, the versions and the drivers, with the mismatch as a warning', () => {
    const jobs = [
      job({ jobId: 'a', hostFacts: { osBuild: '26100.4061', label: '26100.2314', hypervVersion: '10.0.26100.4061', kmclVersion: '10.0.26100.4061', warning: 'hv-a: the inventory says build 26100.2314, the host runs 26100.4061', guestOs: '6.8.0-45-generic' },
        drivers: [{ name: 'vsp', where: 'host', sha256: 'AB'.repeat(32), fileVersion: '1.0.0.3', sourceCommit: '0123456789abcdef' }] }),
      job({ jobId: 'b', host: 'hv-b', hostBuild: '26100.2314', hostFacts: { osBuild: '26100.2314', label: '26100', hypervVersion: undefined } }),
    ];
    const html = renderHosts(jobs);
    expect(html).toMatch(/<p class="host-warning" role="alert"[^>]*>⚠ hv-a: the inventory says build 26100\.2314, the host runs 26100\.4061<\/p>/);
    expect(html.match(/host-warning/g)).toHaveLength(1);
    expect(html).toContain('<th scope="row">hv-a</th><td>26100.4061</td><td>26100.2314</td><td>10.0.26100.4061</td><td>10.0.26100.4061</td><td>vsp 1.0.0.3 abababababab @0123456789</td><td>Ubuntu 24.04: 6.8.0-45-generic</td>');
    expect(html).toContain('<th scope="row">hv-b</th><td>26100.2314</td><td>26100</td><td><i>unknown</i></td>');
    const summary: RunSummary = { version: 1, runId: 'r', lab: 'l', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:01:00Z', jobs };
    // summary.json keeps them: `bench report` rebuilds the same section from the file.
    expect(parseSummary(JSON.parse(JSON.stringify(summary)), 'summary.json').jobs).toEqual(jobs);
    const report = renderReport(summary, undefined);
    expect(report).toContain('<a href="#hosts">Hosts</a>');
    expect(report.indexOf('id="hosts"')).toBeLessThan(report.indexOf('id="matrix"'));
  });

  it('is absent when no job recorded host facts (emulated runs), and escapes what it shows', () => {
    expect(renderHosts([job({})])).toBe('');
    expect(renderReport({ version: 1, runId: 'r', lab: 'l', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:01:00Z', jobs: [job({})] }, undefined)).not.toContain('#hosts');
    expect(renderHosts([job({ hostFacts: { osBuild: '<b>', warning: 'x <script>' } })])).not.toMatch(/<script>|<b>/);
  });
});
