import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSummary } from '../../src/report/summary-schema.ts';
import { createReporters, isReporterName, REPORTERS, RUN_REPORTERS } from '../../src/report/registry.ts';
import { ReporterMultiplexer } from '../../src/report/reporter.ts';
import { fixtureSummary, LATEST, resultsRoot } from './support/fixtures.ts';

describe('reporter registry', () => {
  it('knows every built-in reporter by name', () => {
    expect(Object.keys(REPORTERS).sort()).toEqual(['html', 'json', 'junit', 'list']);
    expect(isReporterName('junit')).toBe(true);
    expect(isReporterName('toString')).toBe(false);
  });

  it('drives a whole run: progress lines, then summary.json, junit.xml and report.html with trends', async () => {
    const root = resultsRoot(['2026-11-20-nightly', '2026-11-21-nightly']);
    const dir = join(root, LATEST);
    let progress = '';
    const mux = new ReporterMultiplexer(
      createReporters(RUN_REPORTERS, { runDir: dir, terminal: { stream: { write: (s: string) => (progress += s) }, tty: false, color: false, width: 120 } }),
    );
    const s = fixtureSummary();
    mkdirSync(dir);
    mux.onRunBegin({ runId: s.runId, lab: s.lab, jobs: s.jobs });
    for (const j of s.jobs) {
      mux.onJobBegin(j);
      mux.onJobEnd(j, j);
    }
    await mux.onRunEnd(s);
    expect(mux.failures).toEqual([]);
    expect(progress.split('\n').filter((l) => l.startsWith('['))).toHaveLength(13);
    expect(await loadSummary(join(dir, 'summary.json'))).toEqual(s);
    expect(existsSync(join(dir, 'junit.xml'))).toBe(true);
    // The HTML reporter read the history beside the run: the earlier nightlies give the trend.
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('since …11-21-nightly');
    expect(readdirNoTemp(dir)).toEqual(['junit.xml', 'report.html', 'summary.json']);
  });

  it('writes summary.json to stdout when given no file, and says so', async () => {
    const { JsonReporter } = await import('../../src/report/json-reporter.ts');
    let out = '';
    const r = new JsonReporter({ stdout: { write: (s: string) => (out += s) } });
    expect(r.printsToStdout()).toBe(true);
    await r.onRunEnd(fixtureSummary());
    expect(JSON.parse(out).runId).toBe(LATEST);
    expect(new JsonReporter({ file: join(mkdtempSync(join(tmpdir(), 'x-')), 's.json') }).printsToStdout()).toBe(false);
  });
});

/** What is left in the run directory: no temp files from the atomic writes. */
function readdirNoTemp(dir: string): string[] {
  return readdirSync(dir).sort();
}
