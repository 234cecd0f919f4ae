// The run journal: what a resume reads back, a torn last line, and damage it must refuse.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJournal, RunJournal } from '../../src/run/run-journal.ts';
import type { JobResult } from '../../src/report/summary.ts';

const result = (jobId: string): JobResult => ({
  jobId, host: 'h', hostBuild: 'b', guest: 'g', template: 't', scenario: 's', seed: 1, verdict: 'pass', durationsMs: {}, evidence: {},
});

function journalFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'journal-')), 'journal.jsonl');
}

describe('run journal', () => {
  it('reads back the run start and every finished job; a begun job without an end is not done', () => {
    const file = journalFile();
    const j = RunJournal.create(file);
    j.append({ type: 'run-begin', runId: 'r1', startedAt: '2026-11-24T03:00:00.000Z', at: '2026-11-24T03:00:00.000Z' });
    j.append({ type: 'job-begin', jobId: 'a', at: 'x' });
    j.append({ type: 'job-end', jobId: 'a', at: 'x', result: result('a') });
    j.append({ type: 'job-begin', jobId: 'b', at: 'x' });
    j.close();
    const s = readJournal(file);
    expect(s).toMatchObject({ runId: 'r1', startedAt: '2026-11-24T03:00:00.000Z' });
    expect([...s.done.keys()]).toEqual(['a']);
    expect(s.done.get('a')).toEqual(result('a'));
    expect(() => RunJournal.create(file)).toThrow(/cannot open journal/);
  });

  it('ignores a torn last line, and cuts it off before appending', () => {
    const file = journalFile();
    const begin = JSON.stringify({ type: 'run-begin', runId: 'r', startedAt: 'x', at: 'x' });
    writeFileSync(file, `${begin}\n{"type":"job-end","jobId":"a","res`);
    const s = readJournal(file);
    expect(s.done.size).toBe(0);
    const j = RunJournal.reopen(file, s.completeBytes);
    j.append({ type: 'run-resume', at: 'y' });
    j.close();
    expect(readFileSync(file, 'utf8')).toBe(`${begin}\n{"type":"run-resume","at":"y"}\n`);
  });

  it('refuses a damaged line or a job recorded twice, naming the line', () => {
    const file = journalFile();
    const begin = JSON.stringify({ type: 'run-begin', runId: 'r', startedAt: 'x', at: 'x' });
    const end = JSON.stringify({ type: 'job-end', jobId: 'a', at: 'x', result: result('a') });
    writeFileSync(file, `${begin}\nnot json\n`);
    expect(() => readJournal(file)).toThrow(`${file}:2`);
    writeFileSync(file, `${begin}\n${end}\n${end}\n`);
    expect(() => readJournal(file)).toThrow(`${file}:3 jobId: job a is recorded twice`);
    writeFileSync(file, '');
    expect(() => readJournal(file)).toThrow(/empty/);
  });
});
