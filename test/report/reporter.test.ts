import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReports } from '../../src/report/build.ts';
import { REPORTERS } from '../../src/report/registry.ts';
import { describeFailure, ReporterMultiplexer, type Reporter, type ReporterFailure } from '../../src/report/reporter.ts';
import { fixtureSummary, LATEST, resultsRoot } from './support/fixtures.ts';

const crashingHtml = { ...REPORTERS, html: () => ({ onRunEnd: () => { throw new Error('renderer exploded'); } }) };

describe('ReporterMultiplexer', () => {
  it('calls every reporter for every hook even when one throws, and reports each failure', async () => {
    const calls: string[] = [];
    const seen: ReporterFailure[] = [];
    const good: Reporter = {
      onRunBegin: () => void calls.push('begin'),
      onJobBegin: () => void calls.push('job-begin'),
      onJobEnd: () => void calls.push('job-end'),
      onRunEnd: async () => void calls.push('end'),
    };
    const bad: Reporter = {
      onRunBegin: () => { throw new Error('b1'); },
      onJobEnd: () => { throw new Error('b2'); },
      onRunEnd: async () => { throw new Error('b3'); },
    };
    const mux = new ReporterMultiplexer([{ name: 'bad', reporter: bad }, { name: 'good', reporter: good }], (f) => seen.push(f));
    const s = fixtureSummary();
    mux.onRunBegin({ runId: s.runId, lab: s.lab, jobs: s.jobs });
    mux.onJobBegin(s.jobs[0]!);
    mux.onJobEnd(s.jobs[0]!, s.jobs[0]!);
    await mux.onRunEnd(s);
    expect(calls).toEqual(['begin', 'job-begin', 'job-end', 'end']);
    expect(seen.map((f) => `${f.reporter}.${f.hook}`)).toEqual(['bad.onRunBegin', 'bad.onJobEnd', 'bad.onRunEnd']);
    expect(mux.failures).toHaveLength(3);
    expect(describeFailure(seen[2]!)).toBe('bad reporter failed in onRunEnd: b3');
  });

  it('survives an error sink that throws itself', async () => {
    const mux = new ReporterMultiplexer([{ name: 'bad', reporter: { onRunEnd: () => { throw new Error('x'); } } }], () => { throw new Error('sink'); });
    await mux.onRunEnd(fixtureSummary());
    expect(mux.failures).toHaveLength(1);
  });

  it('knows whether any reporter prints to stdout', () => {
    expect(new ReporterMultiplexer([{ name: 'a', reporter: {} }]).printsToStdout()).toBe(false);
    expect(new ReporterMultiplexer([{ name: 'a', reporter: {} }, { name: 'b', reporter: { printsToStdout: () => true } }]).printsToStdout()).toBe(true);
  });
});

describe('buildReports with a crashing HTML reporter', () => {
  it('still writes junit.xml and reports the HTML failure', async () => {
    const root = resultsRoot();
    const dir = join(root, LATEST);
    const r = await buildReports(dir, { factories: crashingHtml });
    expect(r.failures.map(describeFailure)).toEqual(['html reporter failed in onRunEnd: renderer exploded']);
    expect(r.written).toEqual([join(dir, 'junit.xml')]);
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<testsuites>');
    expect(existsSync(join(dir, 'report.html'))).toBe(false);
  });

  it('leaves the previous report.html whole when the new one fails to render', async () => {
    const root = resultsRoot();
    const dir = join(root, LATEST);
    writeFileSync(join(dir, 'report.html'), 'previous report');
    await buildReports(dir, { factories: crashingHtml });
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toBe('previous report');
  });

  it('writes nothing at all when summary.json is bad', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bench-bad-'));
    const dir = join(root, 'bad');
    const { mkdirSync, readdirSync } = await import('node:fs');
    mkdirSync(dir);
    const s = fixtureSummary() as unknown as { jobs: Record<string, unknown>[] };
    s.jobs[4]!.seed = 'seven';
    writeFileSync(join(dir, 'summary.json'), JSON.stringify(s));
    await expect(buildReports(dir)).rejects.toThrow(/summary\.json jobs\[4\]\.seed/);
    expect(readdirSync(dir)).toEqual(['summary.json']);
    expect(readdirSync(root)).toEqual(['bad']);
  });
});
