// `bench report` as a user runs it: a real process, its stdout, stderr and exit code.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, fixtureSummary, LATEST, REPO, resultsRoot } from './support/fixtures.ts';

// The real CLI loads every command's module; while one of them is missing (commands are
// written by different people), the same command runs through a harness with main.ts's
// error mapping. The test title says which one ran.
const realCli = spawnSync(process.execPath, [join(REPO, 'bin/bench.js'), 'report', '--help'], { encoding: 'utf8' });
const useReal = realCli.status === 0;
const entry = useReal ? [join(REPO, 'bin/bench.js')] : [join(REPO, 'test/report/support/report-command.ts')];
const via = useReal ? 'bin/bench.js' : `the report-only harness (bin/bench.js does not load: ${realCli.stderr.split('\n').find((l) => /Error/.test(l)) ?? 'unknown error'})`;

function bench(...args: string[]) {
  const r = spawnSync(process.execPath, [...entry, 'report', ...args], { encoding: 'utf8', cwd: REPO });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe(`bench report, run through ${via}`, () => {
  it('rebuilds junit.xml and report.html and exits 1 for a run with divergences', () => {
    const root = resultsRoot();
    const r = bench(join(root, LATEST));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('run 2026-11-22-nightly (lab-east): divergences found; 9 passed, 2 diverged, 1 hung, 0 errors, 1 skipped, 1 quarantined');
    expect(r.stdout).toContain(`wrote ${join(root, LATEST, 'junit.xml')}`);
    expect(r.stdout).toContain(`wrote ${join(root, LATEST, 'report.html')}`);
    expect(readFileSync(join(root, LATEST, 'report.html'), 'utf8')).toContain('since …11-21-nightly');
  });

  it('with --json prints exactly one JSON document on stdout', () => {
    const root = resultsRoot();
    const r = bench(join(root, LATEST), '--json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      runId: LATEST,
      exitCode: 1,
      counts: { total: 13, pass: 9, diverge: 2, hang: 1, skipped: 1, quarantined: 1 },
      written: [join(root, LATEST, 'junit.xml'), join(root, LATEST, 'report.html')],
      failures: [],
      history: { path: join(root, 'history.sqlite'), rebuiltBecause: 'missing' },
      published: null,
    });
  });

  it('rebuilds a corrupted history index and keeps the trends', () => {
    const root = resultsRoot();
    expect(bench(join(root, LATEST)).code).toBe(1);
    writeFileSync(join(root, 'history.sqlite'), 'this is not an SQLite database');
    const r = bench(join(root, LATEST), '--json');
    expect(JSON.parse(r.stdout).history.rebuiltBecause).toMatch(/unreadable: file is not a database/);
    expect(readFileSync(join(root, LATEST, 'report.html'), 'utf8')).toContain('since …11-21-nightly');
    expect(JSON.parse(bench(join(root, LATEST), '--json').stdout).history.rebuiltBecause).toBeNull();
  });

  it('exits 2 naming file and field for a bad summary.json, and writes nothing', () => {
    const root = resultsRoot([]);
    cpSync(join(FIXTURES, 'bad', 'bad-verdict'), join(root, 'bad-verdict'), { recursive: true });
    const r = bench(join(root, 'bad-verdict'), '--publish', join(root, 'site'));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^bench: ${join(root, 'bad-verdict', 'summary.json')} jobs\\[1\\]\\.verdict: `));
    expect(readdirSync(join(root, 'bad-verdict'))).toEqual(['summary.json']);
    expect(readdirSync(root)).toEqual(['bad-verdict']);
  });

  it('exits 2 for a summary.json cut off mid-write', () => {
    const r = bench(join(FIXTURES, 'bad', 'not-json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not-json\/summary\.json:\d+: not valid JSON/);
  });

  it('exits 2 for a directory that is not a run directory', () => {
    const r = bench(join(FIXTURES, 'no-such-run'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no summary\.json here/);
  });

  it('exits 0 when everything passed and 3 when the only failures are infrastructure errors', () => {
    const root = resultsRoot([]);
    const pass = fixtureSummary();
    pass.runId = 'all-pass';
    for (const j of pass.jobs) Object.assign(j, { verdict: 'pass', divergenceClass: undefined, quarantined: undefined });
    mkdirSync(join(root, 'all-pass'));
    writeFileSync(join(root, 'all-pass', 'summary.json'), JSON.stringify(pass));
    expect(bench(join(root, 'all-pass')).code).toBe(0);

    const infra = structuredClone(pass);
    infra.runId = 'infra';
    infra.startedAt = '2026-11-23T02:00:00Z';
    infra.jobs[0]!.verdict = 'error';
    mkdirSync(join(root, 'infra'));
    writeFileSync(join(root, 'infra', 'summary.json'), JSON.stringify(infra));
    expect(bench(join(root, 'infra')).code).toBe(3);
  });

  it('publishes the static site with --publish', () => {
    const root = resultsRoot();
    const site = join(root, 'site');
    const r = bench(join(root, LATEST), '--publish', site);
    expect(r.code).toBe(1);
    // The fixture keeps one of its failing jobs' evidence files; the rest are missing.
    expect(r.stdout).toMatch(new RegExp(`published 3 run\\(s\\) to ${site.replaceAll('/', '\\/')}; evidence: 1 file\\(s\\), [\\d.]+ (bytes|KiB); left out: \\d+ missing from their run directories`));
    expect(existsSync(join(site, 'index.html'))).toBe(true);
    expect(existsSync(join(site, 'runs', LATEST, 'report.html'))).toBe(true);
    expect(existsSync(join(site, 'runs', LATEST, 'jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl'))).toBe(true);
  });

  it('publishes evidence up to --evidence-cap MiB per run, and refuses a cap that is not a positive integer', () => {
    const root = resultsRoot([LATEST]);
    const site = join(root, 'site');
    const r = bench(join(root, LATEST), '--publish', site, '--evidence-cap', '2', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).published.evidence).toMatchObject({ copied: 1, capBytesPerRun: 2 * 1024 * 1024 });
    expect(readFileSync(join(site, 'index.html'), 'utf8')).toContain('up to <b>2 MiB per run</b>');
    const bad = bench(join(root, LATEST), '--publish', join(root, 'site2'), '--evidence-cap', '0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--evidence-cap must be a positive integer, got "0"');
    expect(existsSync(join(root, 'site2'))).toBe(false);
  });

  it('refuses, with exit 2 and before writing anything, to publish over a directory it did not publish', () => {
    const root = resultsRoot([LATEST]);
    const dest = join(root, 'docs');
    mkdirSync(dest);
    writeFileSync(join(dest, 'notes.md'), 'mine');
    const r = bench(join(root, LATEST), '--publish', dest);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/docs.*--publish: publish destination is a non-empty directory that bench did not publish/);
    expect(readdirSync(join(root, LATEST)).sort()).toEqual(['jobs', 'summary.json']);
    expect(readdirSync(dest)).toEqual(['notes.md']);
  });
});
