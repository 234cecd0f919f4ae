// The emulated nightly under what a hostile run did to it (issue 16): two runs into one
// results folder, two resumes of one killed run at once, attempts killed mid-write, and a
// disk that fills up.
import { afterAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { foldJournal, readJournal } from '../../src/run/engine/journal.ts';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });
const runDirOf = (out: string): string | undefined => readdirSync(out).find((d) => /Z-[0-9a-f]{4}$/.test(d));
/** How many jobs the run planned, from the plan.json it wrote (lab/emulated.yaml's count grows with its scenarios). */
const plannedJobs = (runDir: string): number => (JSON.parse(readFileSync(join(runDir, 'plan.json'), 'utf8')) as { jobs: unknown[] }).jobs.length;

/** Starts a nightly of lab/emulated.yaml (over a hundred jobs) and kills it once `ends` jobs are recorded. */
async function killedRun(out: string, ends = 5): Promise<string> {
  const child: ResultPromise = execa('node', ['bin/bench.js', 'nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--workers', '1'], { reject: false });
  const recorded = (): number => {
    const run = runDirOf(out);
    if (!run || !existsSync(join(out, run, 'journal.jsonl'))) return 0;
    return readFileSync(join(out, run, 'journal.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"t":"end"')).length;
  };
  while (recorded() < ends) {
    if (child.exitCode !== null) throw new Error(`the run ended before it could be killed: ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await child;
  return runDirOf(out)!;
}

describe('bench nightly: one run per lab and results folder', () => {
  it('refuses a second nightly into the same --out while the first runs', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-lock-'));
    const first = execa('node', ['bin/bench.js', 'nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--workers', '1'], { reject: false });
    while (!existsSync(join(out, '.lock-emulator.json'))) await new Promise((r) => setTimeout(r, 5));
    const second = await bench(['nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--workers', '1']);
    first.kill('SIGKILL');
    await first;
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toContain('another run of lab emulator is in progress');
    // The refused run left no run directory of its own.
    expect(readdirSync(out).filter((d) => /Z-[0-9a-f]{4}$/.test(d))).toHaveLength(1);
  });

  it('two --resume of one killed run at once: one finishes it, the other is refused, every job recorded once', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-lock-'));
    const runId = await killedRun(out);
    const [a, b] = await Promise.all([0, 1].map(() => bench(['nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--resume', runId, '--workers', '1'])));
    expect([a!.exitCode, b!.exitCode].sort()).toEqual([0, 3]);
    expect([a!.stderr, b!.stderr].join('\n')).toMatch(/another run of lab emulator is in progress|another run keeps taking it/);
    const state = foldJournal(readJournal(join(out, runId, 'journal.jsonl')).records);
    expect(state.duplicateEnds).toEqual([]);
    expect(state.results.size).toBe(plannedJobs(join(out, runId)));
    expect(state.finished).toBe(true);
    expect(existsSync(join(out, '.lock-emulator.json'))).toBe(false);
  });

  it('a resume removes the .partial traces its killed attempts left in jobs/', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-lock-'));
    const runId = await killedRun(out, 3);
    // What a kill in the middle of a trace write leaves.
    const stray = join(out, runId, 'jobs', 'killed-job', 'emulator.jsonl.partial');
    mkdirSync(join(out, runId, 'jobs', 'killed-job'), { recursive: true });
    writeFileSync(stray, '{"v":1,"seq":1');
    const r = await bench(['nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--resume', runId, '--workers', '2']);
    expect(r.exitCode).toBe(0);
    const partials = execFileSync('find', [join(out, runId), '-name', '*.partial'], { encoding: 'utf8' }).trim();
    expect(partials).toBe('');
  });
});

function mountTmpfs(sizeKb: number): string | null {
  if (process.getuid?.() !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), 'nightly-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return null;
  }
}

// A real full disk: a small tmpfs, which only root can mount. Elsewhere the case skips.
const FULL = mountTmpfs(300);
afterAll(() => {
  if (FULL !== null) execFileSync('umount', [FULL]);
});

describe.skipIf(FULL === null)('bench nightly on a disk that fills up', () => {
  it('exits 3 naming the disk; a resume with room runs the jobs the full disk failed, each recorded once', async () => {
    const out = FULL!;
    const r = await bench(['nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--workers', '1']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).not.toContain('internal error');
    expect(r.stderr).toContain(`the disk is full: no space left on the file system at ${out}`);
    const runId = runDirOf(out)!;
    expect(r.stderr).toContain(`--resume ${runId}`);
    const before = foldJournal(readJournal(join(out, runId, 'journal.jsonl')).records);
    // No job keeps an error that only says the disk was full.
    for (const res of before.results.values()) expect(`${res.verdict} ${res.message ?? ''}`).not.toMatch(/ENOSPC|no space left/);
    // More room: the resume finishes the run.
    execFileSync('mount', ['-o', 'remount,size=64m', out]);
    const again = await bench(['nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--resume', runId, '--workers', '2', '--json']);
    expect(again.exitCode).toBe(0);
    const after = foldJournal(readJournal(join(out, runId, 'journal.jsonl')).records);
    expect(after.results.size).toBe(plannedJobs(join(out, runId)));
    expect(after.duplicateEnds).toEqual([]);
    expect([...after.results.values()].filter((x) => x.verdict === 'error')).toEqual([]);
  });
});
