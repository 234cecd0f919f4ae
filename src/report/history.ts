// The history index across runs: one SQLite file (node:sqlite) in the results root,
// `results/history.sqlite`, that `bench report` reads for trends and for the index of
// published runs.
//
// The index is a cache of the run directories, never the only copy of anything: each run's
// summary.json is the truth. So when the file is missing, is not a database, fails
// SQLite's integrity check or has another schema version, it is rebuilt from the run
// directories beside it, into a temp file that then replaces it. When it is healthy, it is
// brought up to date: runs whose summary.json is new or changed (size or mtime) are
// (re)indexed, and runs whose directory is gone are dropped.
import { DatabaseSync } from 'node:sqlite';
import { readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isBenchError } from '../errors.ts';
import { tempPathBeside } from './atomic-file.ts';
import { SUMMARY_FILE } from './run-dir.ts';
import { loadSummary } from './summary-schema.ts';
import type { RunSummary, Verdict } from './summary.ts';
import { cellRowsOf, computeTrends, runOrder, runRowOf, type CellRow, type RunRow, type Trends } from './trends.ts';

// Bump when the tables change; an index of another version is rebuilt, not migrated.
const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, lab TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    dir TEXT NOT NULL, summary_size INTEGER NOT NULL, summary_mtime_ms REAL NOT NULL,
    total INTEGER NOT NULL, pass INTEGER NOT NULL, diverge INTEGER NOT NULL, error INTEGER NOT NULL,
    hang INTEGER NOT NULL, skipped INTEGER NOT NULL, quarantined INTEGER NOT NULL, exit_code INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE cells (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL, verdict TEXT NOT NULL, divergence_class TEXT,
    PRIMARY KEY (run_id, cell_id)
  ) STRICT;
  PRAGMA user_version = ${SCHEMA_VERSION};
`;

export interface OpenedHistory {
  history: History;
  /** Why the index was rebuilt, if it was: "missing", or what was wrong with it. */
  rebuiltBecause: string | undefined;
  /** Run directories that could not be indexed (bad summary.json), one line each. */
  warnings: string[];
}

interface Stamp {
  size: number;
  mtimeMs: number;
}

export class History {
  readonly path: string;
  readonly resultsRoot: string;
  private readonly db: DatabaseSync;

  constructor(db: DatabaseSync, path: string, resultsRoot: string) {
    this.db = db;
    this.path = path;
    this.resultsRoot = resultsRoot;
  }

  /** Adds or replaces one run. The summary must already be validated. */
  record(summary: RunSummary, dir: string, stamp: Stamp): void {
    const row = runRowOf(summary);
    const c = row.counts;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.prepare('DELETE FROM runs WHERE run_id = ?').run(summary.runId);
      this.db
        .prepare('INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(row.runId, row.lab, row.startedAt, row.finishedAt, resolve(dir), stamp.size, stamp.mtimeMs,
          c.total, c.pass, c.diverge, c.error, c.hang, c.skipped, c.quarantined, row.exitCode);
      const insert = this.db.prepare('INSERT INTO cells VALUES (?, ?, ?, ?)');
      for (const cell of cellRowsOf(summary)) insert.run(cell.runId, cell.cellId, cell.verdict, cell.divergenceClass);
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Brings the index in line with the run directories in the results root. */
  async sync(): Promise<string[]> {
    const warnings: string[] = [];
    const onDisk = await listRunDirs(this.resultsRoot);
    const known = new Map(
      (this.db.prepare('SELECT run_id, dir, summary_size, summary_mtime_ms FROM runs').all() as {
        run_id: string; dir: string; summary_size: number; summary_mtime_ms: number;
      }[]).map((r) => [r.dir, r]),
    );
    for (const { dir, stamp } of onDisk) {
      const k = known.get(dir);
      known.delete(dir);
      if (k && k.summary_size === stamp.size && k.summary_mtime_ms === stamp.mtimeMs) continue;
      // `bench emulate --out` writes a summary.json of its own (kind: emulate); README sends
      // it under results/ too. It is not a run of a lab: left out, without a warning.
      if (await isEmulateOutput(join(dir, SUMMARY_FILE))) continue;
      try {
        this.record(await loadSummary(join(dir, SUMMARY_FILE)), dir, stamp);
      } catch (e) {
        if (!isBenchError(e)) throw e;
        warnings.push(`history: skipped ${dir}: ${e.message}`);
      }
    }
    // What is left was indexed once but its summary.json is gone.
    const drop = this.db.prepare('DELETE FROM runs WHERE dir = ?');
    for (const dir of known.keys()) drop.run(dir);
    return warnings;
  }

  /** Every indexed run, oldest first; only one lab's when `lab` is given. */
  runs(lab?: string): RunRow[] {
    const rows = (lab === undefined
      ? this.db.prepare('SELECT * FROM runs').all()
      : this.db.prepare('SELECT * FROM runs WHERE lab = ?').all(lab)) as Record<string, string | number>[];
    return rows
      .map((r) => ({
        runId: String(r.run_id),
        lab: String(r.lab),
        startedAt: String(r.started_at),
        finishedAt: String(r.finished_at),
        counts: {
          total: Number(r.total), pass: Number(r.pass), diverge: Number(r.diverge), error: Number(r.error),
          hang: Number(r.hang), skipped: Number(r.skipped), quarantined: Number(r.quarantined),
        },
        exitCode: Number(r.exit_code),
      }))
      .sort(runOrder);
  }

  /** The directory a run was indexed from. */
  dirOf(runId: string): string | undefined {
    const r = this.db.prepare('SELECT dir FROM runs WHERE run_id = ?').get(runId) as { dir: string } | undefined;
    return r?.dir;
  }

  trends(summary: RunSummary): Trends {
    const cells = (this.db
      .prepare('SELECT c.run_id, c.cell_id, c.verdict, c.divergence_class FROM cells c JOIN runs r USING (run_id) WHERE r.lab = ?')
      .all(summary.lab) as { run_id: string; cell_id: string; verdict: string; divergence_class: string | null }[])
      .map((r): CellRow => ({ runId: r.run_id, cellId: r.cell_id, verdict: r.verdict as Verdict, divergenceClass: r.divergence_class }));
    return computeTrends(summary, this.runs(summary.lab), cells);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

/** Whether a summary.json is `bench emulate`'s (src/run/commands/emulate.ts), not a lab run's. */
async function isEmulateOutput(file: string): Promise<boolean> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'emulate';
  } catch {
    return false; // unreadable or not JSON: loadSummary says why
  }
}

/** Run directories: folders of the results root that hold a summary.json. */
async function listRunDirs(root: string): Promise<{ dir: string; stamp: Stamp }[]> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: { dir: string; stamp: Stamp }[] = [];
  for (const ent of entries) {
    if (!ent.isDirectory() || ent.name.startsWith('.')) continue;
    const dir = resolve(root, ent.name);
    try {
      const s = await stat(join(dir, SUMMARY_FILE));
      if (s.isFile()) out.push({ dir, stamp: { size: s.size, mtimeMs: s.mtimeMs } });
    } catch {
      // No summary.json: a run still in progress, or not a run directory.
    }
  }
  return out.sort((a, b) => (a.dir < b.dir ? -1 : 1));
}

/** Returns why an existing index cannot be used, or undefined when it is healthy. */
function diagnose(db: DatabaseSync): string | undefined {
  const check = db.prepare('PRAGMA quick_check').all() as { quick_check: string }[];
  if (check.length !== 1 || check[0]?.quick_check !== 'ok') return `integrity check failed: ${check.map((r) => r.quick_check).join('; ')}`;
  const v = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  if (v !== SCHEMA_VERSION) return `schema version ${v}, expected ${SCHEMA_VERSION}`;
  return undefined;
}

async function removeDbFiles(path: string): Promise<void> {
  // A stale rollback journal beside a new file would be "hot" and replayed into it.
  for (const suffix of ['', '-journal', '-wal', '-shm']) await rm(path + suffix, { force: true });
}

/**
 * Opens the index at `path` for the run directories in `resultsRoot`, rebuilding it when it
 * is missing or damaged, and syncing it with the directories otherwise.
 */
export async function openHistory(path: string, resultsRoot: string): Promise<OpenedHistory> {
  const root = resolve(resultsRoot);
  let reason: string | undefined = 'missing';
  if (await exists(path)) {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { timeout: 5000 });
      reason = diagnose(db);
      if (reason === undefined) {
        const history = new History(db, path, root);
        const warnings = await history.sync();
        return { history, rebuiltBecause: undefined, warnings };
      }
    } catch (e) {
      reason = `unreadable: ${(e as Error).message}`;
    }
    db?.close();
  }
  return rebuild(path, root, reason ?? 'damaged');
}

async function rebuild(path: string, root: string, reason: string): Promise<OpenedHistory> {
  const tmp = tempPathBeside(path);
  let warnings: string[];
  // Invariant: the temporary index never outlives this call, whether building it or
  // putting it in place fails (history.sqlite a directory, a read-only folder, a full disk).
  try {
    const fresh = new DatabaseSync(tmp);
    try {
      fresh.exec(SCHEMA);
      warnings = await new History(fresh, tmp, root).sync();
    } finally {
      fresh.close();
    }
    await removeDbFiles(path);
    await rename(tmp, path);
  } catch (e) {
    await removeDbFiles(tmp);
    throw e;
  }
  const db = new DatabaseSync(path, { timeout: 5000 });
  return { history: new History(db, path, root), rebuiltBecause: reason, warnings };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
