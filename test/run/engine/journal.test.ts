// The engine's journal: fsynced lines, a torn last line cut away, VMs registered before
// they exist and swept unless removed or kept, and results recorded once.
import { describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { foldJournal, isDiskFull, Journal, keptResults, mountPointOf, readJournal } from '../../../src/run/engine/journal.ts';
import type { JobResult } from '../../../src/report/summary.ts';

const result = (jobId: string): JobResult => ({ jobId, host: 'h', hostBuild: 'b', guest: 'g', template: 't', scenario: 's', seed: 1, verdict: 'pass', durationsMs: {}, evidence: {} });
const file = () => join(mkdtempSync(join(tmpdir(), 'engine-journal-')), 'journal.jsonl');
const at = '2026-11-24T03:00:00.000Z';

describe('Journal', () => {
  it('folds attempts, results, live and kept VMs, and hosts taken out', () => {
    const f = file();
    const { journal } = Journal.open(f);
    journal.append({ t: 'run', runId: 'r', planDigest: 'd', at, pid: 1, resumed: false });
    journal.append({ t: 'attempt', jobId: 'a', attempt: 1, hosts: ['h'], at });
    journal.append({ t: 'vm', key: 'vm1', host: 'h', name: 'vm1', jobId: 'a', at });
    journal.append({ t: 'vm', key: 'vm2', host: 'h', name: 'vm2', jobId: 'b', at });
    journal.append({ t: 'vm', key: 'vm3', host: 'h', name: 'vm3', jobId: 'c', at });
    journal.append({ t: 'vm-gone', key: 'vm1', at });
    journal.append({ t: 'vm-kept', key: 'vm3', jobId: 'c', at });
    journal.append({ t: 'host-out', host: 'x', reason: 'down', at });
    journal.append({ t: 'end', jobId: 'a', result: result('a'), at });
    journal.close();
    const s = Journal.open(f).state;
    expect(s.runId).toBe('r');
    expect([...s.results.keys()]).toEqual(['a']);
    expect([...s.liveVms.keys()]).toEqual(['vm2']);
    expect(s.keptVms.map((v) => v.key)).toEqual(['vm3']);
    expect(s.hostsOut.get('x')).toBe('down');
    expect(s.attempts.get('a')).toBe(1);
  });

  it('ignores a line cut short by a crash and cuts it away before appending', () => {
    const f = file();
    const { journal } = Journal.open(f);
    journal.append({ t: 'end', jobId: 'a', result: result('a'), at });
    journal.close();
    appendFileSync(f, '{"t":"end","jobId":"b","res');
    expect(readJournal(f).records).toHaveLength(1);
    const again = Journal.open(f);
    again.journal.append({ t: 'end', jobId: 'c', result: result('c'), at });
    again.journal.close();
    const lines = readFileSync(f, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as { jobId: string }).jobId)).toEqual(['a', 'c']);
  });

  it('refuses a damaged line in the middle, naming the file and line', () => {
    const f = file();
    writeFileSync(f, `{"t":"run-end","at":"x"}\nnot json\n{"t":"run-end","at":"x"}\n`);
    expect(() => readJournal(f)).toThrow(/journal\.jsonl:2/);
  });

  it('counts a second result for the same job as a duplicate', () => {
    const s = foldJournal([{ t: 'end', jobId: 'a', result: result('a'), at }, { t: 'end', jobId: 'a', result: result('a'), at }]);
    expect(s.duplicateEnds).toEqual(['a']);
  });

  it('keeps no result that was an error only because the disk was full, and its rerun is no duplicate', () => {
    const full: JobResult = { ...result('a'), verdict: 'error', message: 'cannot write trace file x.partial: ENOSPC: no space left on device, write' };
    const other: JobResult = { ...result('b'), verdict: 'error', message: 'host hv-a unreachable' };
    const s = foldJournal([{ t: 'end', jobId: 'a', result: full, at }, { t: 'end', jobId: 'b', result: other, at }]);
    expect([...keptResults(s).keys()]).toEqual(['b']);
    const rerun = foldJournal([{ t: 'end', jobId: 'a', result: full, at }, { t: 'end', jobId: 'a', result: result('a'), at }]);
    expect(rerun.duplicateEnds).toEqual([]);
    expect(rerun.results.get('a')?.verdict).toBe('pass');
  });

  it('knows a full disk by its code or its message, and names the file system a path is on', () => {
    expect(isDiskFull(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(true);
    expect(isDiskFull('EDQUOT: disk quota exceeded')).toBe(true);
    expect(isDiskFull(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(mountPointOf('/proc/self/status')).toBe('/proc');
  });
});
