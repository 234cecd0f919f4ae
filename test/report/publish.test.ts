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
    expect(files).toEqual(['.bench-site', 'index.html', ...RUN_IDS.flatMap((id) => [`runs/${id}/junit.xml`, `runs/${id}/report.html`, `runs/${id}/summary.json`])].sort());
    const index = readFileSync(join(dest, 'index.html'), 'utf8');
    for (const id of RUN_IDS) expect(index).toContain(`href="runs/${id}/report.html"`);
    // Published reports show evidence paths but do not link them: the traces are not published.
    const report = readFileSync(join(dest, 'runs', LATEST, 'report.html'), 'utf8');
    expect(report).toContain('<code>jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl</code>');
    expect(report).not.toContain('href="jobs/');
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
