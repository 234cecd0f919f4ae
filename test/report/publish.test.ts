import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { publishSite, siteSegment } from '../../src/report/publish.ts';
import { LATEST, resultsRoot, RUN_IDS } from './support/fixtures.ts';

function options(root: string) {
  return { historyPath: join(root, 'history.sqlite'), resultsRoot: root };
}

/** Every file under a directory, relative, sorted: what a reader of the site would find. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[join(e.parentPath, e.name).slice(dir.length + 1)] = readFileSync(join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

describe('publishSite', () => {
  it('publishes an index of runs and each run\'s report, junit.xml and summary.json', async () => {
    const root = resultsRoot();
    const dest = join(root, '..', `${root.split('/').pop()}-site`);
    const r = await publishSite(dest, options(root));
    expect(r.runs).toEqual([...RUN_IDS]);
    const files = Object.keys(tree(dest)).sort();
    // The fixture keeps one evidence file: the trace of the lost migration. It is published beside its report.
    const trace = `runs/${LATEST}/jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl`;
    expect(files).toEqual(['.bench-site', 'index.html', trace, ...RUN_IDS.flatMap((id) => [`runs/${id}/junit.xml`, `runs/${id}/report.html`, `runs/${id}/summary.json`])].sort());
    expect(readFileSync(join(dest, trace), 'utf8')).toBe(readFileSync(join(root, LATEST, 'jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl'), 'utf8'));
    expect(r.evidence).toMatchObject({ copied: 1, overCap: 0 });
    const index = readFileSync(join(dest, 'index.html'), 'utf8');
    for (const id of RUN_IDS) expect(index).toContain(`href="runs/${id}/report.html"`);
    expect(index).toContain('up to <b>50 MiB per run</b>');
    // The report links what was published, and says of the rest why it is not a link.
    const report = readFileSync(join(dest, 'runs', LATEST, 'report.html'), 'utf8');
    expect(report).toContain('<a href="jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl"><code>jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl</code></a>');
    expect(report).toContain('<code>jobs/lmrf-hv-02-ubuntu-2404-9/host.jsonl</code> <span class="since">(not found in the run directory when this site was published)</span>');
    expect(report).not.toContain('href="jobs/lmrf-hv-02-ubuntu-2404-9/host.jsonl"');
  });

  it('publishes evidence up to the cap it states, minimised scenarios first, and never a path outside the run', async () => {
    const root = resultsRoot([LATEST]);
    const job = join(root, LATEST, 'jobs', 'lmrf-hv-02-ubuntu-2404-9');
    writeFileSync(join(job, 'minimized.yaml'), 'name: lmrf-min\nsteps:\n  - op: save\n');
    writeFileSync(join(job, 'host.jsonl'), 'x'.repeat(3000));
    writeFileSync(join(job, 'vmms-events.evtx'), 'y'.repeat(500));
    // A summary that points outside its run directory: such a path is never copied.
    const s = JSON.parse(readFileSync(join(root, LATEST, 'summary.json'), 'utf8'));
    writeFileSync(join(root, 'secret.txt'), 'not evidence');
    s.jobs.find((j: { jobId: string }) => j.jobId === 'cadf-hv-03-debian-12-101').evidence.artefacts = ['../secret.txt'];
    writeFileSync(join(root, LATEST, 'summary.json'), JSON.stringify(s));
    const dest = join(dirname(root), `${root.split('/').pop()}-site`);
    const traceSize = readFileSync(join(job, 'trace.jsonl')).length;
    // Room for the minimised scenario, the trace and the log, not for the 3,000-byte host trace.
    const cap = 100 + traceSize + 500 + 100;
    const r = await publishSite(dest, { ...options(root), evidenceCapBytes: cap });
    const base = join(dest, 'runs', LATEST);
    expect(existsSync(join(base, 'jobs/lmrf-hv-02-ubuntu-2404-9/minimized.yaml'))).toBe(true);
    expect(existsSync(join(base, 'jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl'))).toBe(true);
    expect(existsSync(join(base, 'jobs/lmrf-hv-02-ubuntu-2404-9/vmms-events.evtx'))).toBe(true);
    expect(existsSync(join(base, 'jobs/lmrf-hv-02-ubuntu-2404-9/host.jsonl'))).toBe(false);
    expect(Object.keys(tree(dest)).some((f) => f.includes('secret'))).toBe(false);
    expect(r.evidence).toMatchObject({ copied: 3, overCap: 1 });
    const report = readFileSync(join(base, 'report.html'), 'utf8');
    expect(report).toContain(`not published: over this site&#39;s evidence cap of ${(cap / 1024).toFixed(1).replace(/\.0$/, '')} KiB per run; it is in the run directory`);
    // The minimised scenario is shown inline in its card, too.
    expect(report).toContain('<pre class="scenario">name: lmrf-min');
    expect(readFileSync(join(dest, 'index.html'), 'utf8')).toContain(`up to <b>${(cap / 1024).toFixed(1).replace(/\.0$/, '')} KiB per run</b>`);
  });

  it('leaves the previous site untouched and no temp directory behind when publishing fails midway', async () => {
    const root = resultsRoot();
    const dest = join(dirname(root), `${root.split('/').pop()}-site`);
    await publishSite(dest, options(root));
    const before = tree(dest);

    // A new run appears, and the publish dies after writing some of the new site.
    const { cpSync } = await import('node:fs');
    cpSync(join(root, LATEST), join(root, '2026-11-23-nightly'), { recursive: true });
    const s = JSON.parse(readFileSync(join(root, '2026-11-23-nightly', 'summary.json'), 'utf8'));
    s.runId = '2026-11-23-nightly';
    s.startedAt = '2026-11-23T02:00:00Z';
    s.finishedAt = '2026-11-23T02:40:00Z';
    writeFileSync(join(root, '2026-11-23-nightly', 'summary.json'), JSON.stringify(s));
    let writes = 0;
    await expect(
      publishSite(dest, {
        ...options(root),
        afterWrite: () => {
          if (++writes === 5) throw new Error('disk full (injected)');
        },
      }),
    ).rejects.toThrow('disk full (injected)');
    expect(writes).toBe(5);
    expect(tree(dest)).toEqual(before);
    expect(readdirSync(dirname(dest)).filter((n) => n.includes('.publish-') || n.includes('.old-'))).toEqual([]);

    // The next publish goes through and shows the new run.
    const r = await publishSite(dest, options(root));
    expect(r.runs).toContain('2026-11-23-nightly');
    expect(readFileSync(join(dest, 'index.html'), 'utf8')).toContain('runs/2026-11-23-nightly/report.html');
  });

  it('refuses to replace a non-empty directory it did not publish', async () => {
    const root = resultsRoot([LATEST]);
    const dest = join(root, 'not-a-site');
    mkdirSync(dest);
    writeFileSync(join(dest, 'precious.txt'), 'keep me');
    const e = await publishSite(dest, options(root)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).message).toMatch(/not-a-site.*did not publish/);
    expect(readFileSync(join(dest, 'precious.txt'), 'utf8')).toBe('keep me');
  });

  it('publishes into a new directory, creating its parents', async () => {
    const root = resultsRoot([LATEST]);
    const dest = join(root, 'deep', 'er', 'site');
    await publishSite(dest, options(root));
    expect(existsSync(join(dest, 'runs', LATEST, 'report.html'))).toBe(true);
  });

  it('turns any run id into one safe path segment', () => {
    expect(siteSegment('2026-11-22-nightly')).toBe('2026-11-22-nightly');
    expect(siteSegment('../../etc')).toBe('.._.._etc');
    expect(siteSegment('..')).toBe('_..');
    expect(siteSegment('a/b c')).toBe('a_b_c');
  });
});
