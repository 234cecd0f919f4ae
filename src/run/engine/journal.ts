// The run's crash-safe journal, `journal.jsonl` (DESIGN.md "Runs and results").
//
// One JSON line per state change, appended and fsynced before the change is acted on:
// a job's attempt starting, a VM about to be provisioned (its teardown registered before
// the VM exists), a VM removed or kept, a host taken out, a job's result. A run killed at
// any moment is resumed from it: jobs with a result are done (each is recorded exactly
// once, because a job's result is one line and a resumed run never reruns a job that has
// one), jobs without one run again, and every VM registered and not removed is swept.
//
// Writes are synchronous on purpose (writeSync + fsyncSync of one short line): the line
// is on disk before the next step starts, there is no write queue to lose, and a
// simulated-time run is not disturbed by real I/O completing in between.
//
// A crash can cut the last line short. Reading ignores a last line without its newline,
// and opening for append truncates it away first, so the next line starts clean.

import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { InfraError, InputError } from '../../errors.ts';
import type { JobResult } from '../../report/summary.ts';
import { dirname, resolve } from 'node:path';
import { stringifyWithIds } from '../../trace/json-ids.ts';

export type JournalRecord =
  | { t: 'run'; runId: string; planDigest: string; at: string; pid: number; resumed: boolean }
  | { t: 'host-out'; host: string; reason: string; at: string }
  | { t: 'attempt'; jobId: string; attempt: number; hosts: string[]; at: string }
  | { t: 'attempt-failed'; jobId: string; attempt: number; host: string | undefined; retry: boolean; message: string; at: string }
  /** Written before provisioning starts: from here on the VM may exist and must be removed. */
  | { t: 'vm'; key: string; host: string; name: string; jobId: string; at: string }
  | { t: 'vm-gone'; key: string; at: string }
  /** A failed job's VM kept for debugging (--keep-failed); never swept by this run. */
  | { t: 'vm-kept'; key: string; jobId: string; at: string }
  | { t: 'end'; jobId: string; result: JobResult; at: string }
  | { t: 'run-end'; at: string };

export interface VmEntry {
  key: string;
  host: string;
  name: string;
  jobId: string;
}

/** What a journal says, folded. */
export interface JournalState {
  runId: string | undefined;
  planDigest: string | undefined;
  startedAt: string | undefined;
  results: Map<string, JobResult>;
  /** Attempts started per job (a resumed job continues counting). */
  attempts: Map<string, number>;
  /** Every failed attempt, for the job's record of attempts. */
  failedAttempts: Map<string, Array<{ attempt: number; host: string | undefined; message: string }>>;
  /** VMs registered and neither removed nor kept: the ones a resume must sweep. */
  liveVms: Map<string, VmEntry>;
  keptVms: VmEntry[];
  hostsOut: Map<string, string>;
  finished: boolean;
  /** Results recorded more than once (never expected; counted for tests). */
  duplicateEnds: string[];
}

export function foldJournal(records: Iterable<JournalRecord>): JournalState {
  const s: JournalState = {
    runId: undefined, planDigest: undefined, startedAt: undefined, results: new Map(), attempts: new Map(), failedAttempts: new Map(),
    liveVms: new Map(), keptVms: [], hostsOut: new Map(), finished: false, duplicateEnds: [],
  };
  for (const r of records) {
    switch (r.t) {
      case 'run':
        if (s.runId === undefined) { s.runId = r.runId; s.planDigest = r.planDigest; s.startedAt = r.at; }
        s.finished = false;
        break;
      case 'host-out': s.hostsOut.set(r.host, r.reason); break;
      case 'attempt': s.attempts.set(r.jobId, Math.max(s.attempts.get(r.jobId) ?? 0, r.attempt)); break;
      case 'attempt-failed': {
        const list = s.failedAttempts.get(r.jobId) ?? [];
        list.push({ attempt: r.attempt, host: r.host, message: r.message });
        s.failedAttempts.set(r.jobId, list);
        break;
      }
      case 'vm': s.liveVms.set(r.key, { key: r.key, host: r.host, name: r.name, jobId: r.jobId }); break;
      case 'vm-gone': s.liveVms.delete(r.key); break;
      case 'vm-kept': {
        const vm = s.liveVms.get(r.key);
        if (vm) { s.keptVms.push({ ...vm, jobId: r.jobId }); s.liveVms.delete(r.key); }
        break;
      }
      case 'end':
        // A result that was an error only because the disk was full does not count: the
        // job runs again on resume (see isDiskFullResult), and its new result replaces it.
        if (s.results.has(r.jobId) && !isDiskFullResult(s.results.get(r.jobId)!)) s.duplicateEnds.push(r.jobId);
        s.results.set(r.jobId, r.result);
        break;
      case 'run-end': s.finished = true; break;
    }
  }
  return s;
}

/** Reads a journal; a cut last line (a crash mid-write) is ignored, a bad line elsewhere is an InputError. */
export function readJournal(file: string): { records: JournalRecord[]; goodBytes: number } {
  if (!existsSync(file)) return { records: [], goodBytes: 0 };
  const buf = readFileSync(file);
  const records: JournalRecord[] = [];
  let start = 0;
  let line = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    line++;
    const text = buf.subarray(start, nl).toString('utf8');
    try {
      const r = JSON.parse(text) as JournalRecord;
      if (typeof r !== 'object' || r === null || typeof r.t !== 'string') throw new Error('not a journal record');
      records.push(r);
    } catch (e) {
      throw new InputError(`journal line is not a record (${(e as Error).message})`, { file, line }, { hint: 'the journal is only ever appended to; was it edited by hand?' });
    }
    start = nl + 1;
  }
  return { records, goodBytes: start };
}

export class Journal {
  readonly file: string;
  private fd: number;
  /** Records appended through this handle (tests and the sim lab count them). */
  appended = 0;

  private constructor(file: string, fd: number) {
    this.file = file;
    this.fd = fd;
  }

  /** Opens for append, cutting a torn last line first. Returns what the journal already holds. */
  static open(file: string): { journal: Journal; state: JournalState } {
    const { records, goodBytes } = readJournal(file);
    const fd = openSync(file, 'a+');
    ftruncateSync(fd, goodBytes);
    fsyncSync(fd);
    return { journal: new Journal(file, fd), state: foldJournal(records) };
  }

  /**
   * Appends one record and fsyncs it before returning. A write that fails is an
   * InfraError (exit 3) naming the disk when it is full; a part of the line that made it
   * to disk is a torn last line, which the next open cuts away.
   */
  append(r: JournalRecord): void {
    const data = Buffer.from(`${stringifyWithIds(r)}\n`);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(this.fd, data, off);
      fsyncSync(this.fd);
    } catch (e) {
      throw isDiskFull(e) ? diskFullError(this.file, e) : new InfraError(`cannot write the journal ${this.file}: ${(e as Error).message}`, { cause: e });
    }
    this.appended++;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Whether an error (or an error's message, as a job result keeps it) says the disk is full. */
export function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  const text = typeof e === 'string' ? e : e instanceof Error ? e.message : '';
  return /\bENOSPC\b|\bEDQUOT\b|no space left on device|disk quota exceeded/i.test(text);
}

/**
 * A job whose verdict is an error only because the disk was full: it says nothing about
 * the job, so a resume runs it again rather than keeping it as done.
 */
export function isDiskFullResult(r: JobResult): boolean {
  return r.verdict === 'error' && isDiskFull(r.message ?? '');
}

/** The results a resume keeps: every recorded result but those the full disk caused. */
export function keptResults(state: JournalState): Map<string, JobResult> {
  return new Map([...state.results].filter(([, r]) => !isDiskFullResult(r)));
}

/** The mount point of the file system holding `path` (the topmost directory on its device). */
export function mountPointOf(path: string): string {
  let dir = resolve(path);
  try {
    while (!existsSync(dir)) dir = dirname(dir);
    const dev = statSync(dir).dev;
    for (let up = dirname(dir); up !== dir && statSync(up).dev === dev; up = dirname(dir)) dir = up;
  } catch {
    // Unreadable on the way up: the deepest directory found names the disk well enough.
  }
  return dir;
}

/** The InfraError for a full disk: which file system, which file, and what to do. */
export function diskFullError(file: string, cause?: unknown): InfraError {
  return new InfraError(
    `the disk is full: no space left on the file system at ${mountPointOf(file)} (writing ${file}); free some space there, then finish the run with --resume`,
    { cause },
  );
}

export function nowIso(clockMs?: number): string {
  return new Date(clockMs ?? Date.now()).toISOString();
}
