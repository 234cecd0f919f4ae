// The benchmark is measured by `bench perf`; here only its shape is checked, never its time.
import { describe, expect, it } from 'vitest';
import { benchmarkReportRender, syntheticSummary } from '../../src/report/perf.ts';
import { parseSummary } from '../../src/report/summary-schema.ts';
import { buildMatrix } from '../../src/report/matrix.ts';

describe('benchmarkReportRender', () => {
  it('builds a valid 50 scenarios x 10 host builds x 3 guests summary', () => {
    const s = parseSummary(JSON.parse(JSON.stringify(syntheticSummary())), 'synthetic');
    const m = buildMatrix(s.jobs);
    expect([m.scenarios.length, m.hostBuilds.length, m.guests.length, m.cells.size]).toEqual([50, 10, 3, 1500]);
    expect(s.jobs.filter((j) => j.verdict === 'diverge').length).toBeGreaterThan(30);
  });

  it('returns the render time as a number of milliseconds', () => {
    const r = benchmarkReportRender();
    expect(Object.keys(r)).toEqual(['reportRender1500Ms']);
    expect(r.reportRender1500Ms).toBeGreaterThan(0);
  });
});
