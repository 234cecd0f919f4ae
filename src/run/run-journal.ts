// The crash-safe journal of a run, `results/<run-id>/journal.jsonl` (DESIGN.md, "Runs
// and results"): one JSON line per state change, appended and fsynced before the run goes
// on, so a run killed at any moment can be resumed with every job recorded exactly once.
//
//   {"type":"run-begin","runId":"...","startedAt":"...","at":"..."}
//   {"type":"run-resume","at":"..."}
//   {"type":"job-begin","jobId":"...","at":"..."}
//   {"type":"job-end","jobId":"...","at":"...","result":{ JobResult }}
//   {"type":"run-end","at":"...","exitCode":0}
//
// A job is done when its job-end line is in the journal; a job-begin without one is a job
// that was running when the run died, and runs again on resume. A kill in the middle of an
// append leaves a last line without its newline: reading ignores it and the writer cuts
// it off before appending, so it never merges with the next line.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { InfraError, InputError } from '../errors.ts';
import type { JobResult } from '../report/summary.ts';

export type JournalEntry =
  | { type: 'run-begin'; runId: string; startedAt: string; at: string }
  | { type: 'run-resume'; at: string }
  | { type: 'job-begin'; jobId: string; at: string }
  | { type: 'job-end'; jobId: string; at: string; result: JobResult }
  | { type: 'run-end'; at: string; exitCode: number };

export interface JournalState {
  runId: string;
  startedAt: string;
  /** Finished jobs, by job id, as recorded. */
  done: Map<string, JobResult>;
  /** Byte length of the complete lines; anything after is a torn last line. */
  completeBytes: number;
}

/** Reads a journal; every complete line must be valid, or the journal is bad input (exit 2). */
export function readJournal(file: string): JournalState {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no journal.jsonl here, so the run cannot be resumed' : `cannot read: ${(e as Error).message}`, { file });
  }
  const completeBytes = buf.lastIndexOf(10) + 1;
  const lines = buf.subarray(0, completeBytes).toString('utf8').split('\n').slice(0, -1);
  const state: JournalState = { runId: '', startedAt: '', done: new Map(), completeBytes };
  lines.forEach((text, i) => {
    const where = { file, line: i + 1 };
    let entry: JournalEntry;
    try {
      entry = JSON.parse(text) as JournalEntry;
    } catch {
      throw new InputError('journal line is not valid JSON (the journal is damaged)', where);
    }
    if (i === 0) {
      if (entry.type !== 'run-begin') throw new InputError('a journal starts with a run-begin line', { ...where, field: 'type' });
      state.runId = entry.runId;
      state.startedAt = entry.startedAt;
    } else if (entry.type === 'job-end') {
      if (typeof entry.jobId !== 'string' || typeof entry.result !== 'object' || entry.result === null) {
        throw new InputError('job-end line without jobId and result', where);
      }
      // Invariant: a job is recorded once; a second job-end means the journal was edited or merged.
      if (state.done.has(entry.jobId)) throw new InputError(`job ${entry.jobId} is recorded twice`, { ...where, field: 'jobId' });
      state.done.set(entry.jobId, entry.result);
    }
  });
  if (lines.length === 0) throw new InputError('the journal is empty (the run died before it started); start a new run', { file });
  return state;
}

/** Appends entries, each one on the disk (fsync) before `append` returns. */
export class RunJournal {
  readonly file: string;
  private fd: number | undefined;

  private constructor(file: string, fd: number) {
    this.file = file;
    this.fd = fd;
  }

  /** A new journal; refuses to touch an existing one. */
  static create(file: string): RunJournal {
    return new RunJournal(file, openOrFail(file, 'wx'));
  }

  /** An existing journal, its torn last line (if any) cut off at `completeBytes`. */
  static reopen(file: string, completeBytes: number): RunJournal {
    const fd = openOrFail(file, 'r+');
    try {
      if (fstatSync(fd).size !== completeBytes) ftruncateSync(fd, completeBytes);
    } catch (e) {
      closeSync(fd);
      throw new InfraError(`cannot repair journal ${file}: ${(e as Error).message}`, { cause: e });
    }
    closeSync(fd);
    return new RunJournal(file, openOrFail(file, 'a'));
  }

  append(entry: JournalEntry): void {
    if (this.fd === undefined) throw new Error(`journal ${this.file} is closed`);
    const bytes = Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8');
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(this.fd, bytes, off, bytes.length - off);
      fsyncSync(this.fd);
    } catch (e) {
      throw new InfraError(`cannot append to journal ${this.file}: ${(e as Error).message}`, { cause: e });
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}

function openOrFail(file: string, flags: string): number {
  try {
    return openSync(file, flags);
  } catch (e) {
    throw new InfraError(`cannot open journal ${file}: ${(e as Error).message}`, { cause: e });
  }
}
