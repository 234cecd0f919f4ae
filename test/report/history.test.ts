import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openHistory } from '../../src/report/history.ts';
import { cellId } from '../../src/report/summary.ts';
import { fixtureSummary, LATEST, resultsRoot, RUN_IDS } from './support/fixtures.ts';

const lostCell = cellId({ hostBuild: '10.0.26100.1742', guest: 'ubuntu-24.04', scenario: 'live-migrate-ring-full' });

async function open(root: string) {
  return openHistory(join(root, 'history.sqlite'), root);
}

describe('history index', () => {
  it('is built from the run directories when missing, and gives trends', async () => {
    const root = resultsRoot();
    const h = await open(root);
    try {
      expect(h.rebuiltBecause).toBe('missing');
      expect(h.history.runs().map((r) => r.runId)).toEqual([...RUN_IDS]);
      expect(h.history.trends(fixtureSummary()).cells.get(lostCell)).toMatchObject({ since: '2026-11-21-nightly', runsInState: 2 });
    } finally {
      h.history.close();
    }
  });

  it('is rebuilt when the database file is corrupted, with the same content', async () => {
    const root = resultsRoot();
    (await open(root)).history.close();
    const db = join(root, 'history.sqlite');
    writeFileSync(db, Buffer.alloc(8192, 0x5a)); // not a database any more
    const h = await open(root);
    try {
      expect(h.rebuiltBecause).toMatch(/unreadable|integrity/);
      expect(h.history.runs().map((r) => r.runId)).toEqual([...RUN_IDS]);
      expect(h.history.trends(fixtureSummary()).cells.get(lostCell)?.since).toBe('2026-11-21-nightly');
    } finally {
      h.history.close();
    }
    // The rebuilt file is healthy: the next open just uses it.
    const again = await open(root);
    again.history.close();
    expect(again.rebuiltBecause).toBeUndefined();
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('is rebuilt when a page in the middle is damaged', async () => {
    const root = resultsRoot();
    (await open(root)).history.close();
    const db = join(root, 'history.sqlite');
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(db);
    bytes.fill(0xff, 4096, 8192); // page 2: the runs table
    writeFileSync(db, bytes);
    const h = await open(root);
    h.history.close();
    expect(h.rebuiltBecause).toMatch(/unreadable|integrity/);
    const again = await open(root);
    try {
      expect(again.history.runs()).toHaveLength(3);
    } finally {
      again.history.close();
    }
  });

  it('ignores a stale journal left beside a damaged index', async () => {
    const root = resultsRoot();
    writeFileSync(join(root, 'history.sqlite'), 'garbage');
    writeFileSync(join(root, 'history.sqlite-journal'), 'garbage journal');
    const h = await open(root);
    try {
      expect(h.history.runs()).toHaveLength(3);
      expect(existsSync(join(root, 'history.sqlite-journal'))).toBe(false);
    } finally {
      h.history.close();
    }
  });

  it('picks up a new run, re-reads a changed summary, and drops a deleted run', async () => {
    const root = resultsRoot([RUN_IDS[0], RUN_IDS[1]]);
    (await open(root)).history.close();
    const { cpSync } = await import('node:fs');
    const { FIXTURES } = await import('./support/fixtures.ts');
    cpSync(join(FIXTURES, 'results', LATEST), join(root, LATEST), { recursive: true });
    // A changed summary (a re-run of the same run id) replaces what was indexed.
    const changed = fixtureSummary(RUN_IDS[1]);
    for (const j of changed.jobs) j.verdict = 'pass';
    const file = join(root, RUN_IDS[1], 'summary.json');
    writeFileSync(file, JSON.stringify(changed));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    rmSync(join(root, RUN_IDS[0]), { recursive: true });

    const h = await open(root);
    try {
      expect(h.rebuiltBecause).toBeUndefined();
      const runs = h.history.runs();
      expect(runs.map((r) => r.runId)).toEqual([RUN_IDS[1], LATEST]);
      expect(runs[0]?.counts.pass).toBe(12);
      expect(h.history.trends(fixtureSummary()).cells.get(lostCell)).toMatchObject({ since: LATEST, previous: { verdict: 'pass' } });
    } finally {
      h.history.close();
    }
  });

  it('skips a run directory whose summary.json is bad, with a warning naming it', async () => {
    const root = resultsRoot();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(root, 'broken-run'));
    writeFileSync(join(root, 'broken-run', 'summary.json'), '{"version": 1, "runId": ');
    const h = await open(root);
    try {
      expect(h.history.runs()).toHaveLength(3);
      expect(h.warnings).toHaveLength(1);
      expect(h.warnings[0]).toMatch(/broken-run.*not valid JSON/);
    } finally {
      h.history.close();
    }
  });

  it('leaves out, without a warning, a folder of `bench emulate --out` results beside the runs', async () => {
    const root = resultsRoot();
    mkdirSync(join(root, 'blockq'));
    writeFileSync(join(root, 'blockq', 'summary.json'), JSON.stringify({ kind: 'emulate', seed: 1, passed: 3, failed: 0, scenarios: [] }));
    // A run's summary that merely lacks its fields is still named.
    mkdirSync(join(root, 'half-run'));
    writeFileSync(join(root, 'half-run', 'summary.json'), JSON.stringify({ kind: 'nightly' }));
    const h = await open(root);
    try {
      expect(h.history.runs()).toHaveLength(3);
      expect(h.warnings).toHaveLength(1);
      expect(h.warnings[0]).toMatch(/half-run/);
    } finally {
      h.history.close();
    }
  });

  it('is rebuilt when its schema version is not the current one', async () => {
    const root = resultsRoot();
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(join(root, 'history.sqlite'));
    db.exec('CREATE TABLE runs (x); PRAGMA user_version = 99;');
    db.close();
    const h = await open(root);
    h.history.close();
    expect(h.rebuiltBecause).toBe('schema version 99, expected 1');
  });

  it('leaves no temporary index behind when history.sqlite cannot be replaced', async () => {
    const root = resultsRoot();
    // A directory in the way: the rebuilt index cannot be renamed onto it.
    mkdirSync(join(root, 'history.sqlite', 'in-the-way'), { recursive: true });
    await expect(open(root)).rejects.toThrow();
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
