// The real `bench nightly` and `bench explore --workers` commands: exit codes, one JSON
// document on stdout, and error messages that name the file, line and field.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });

describe('bench nightly', () => {
  it('runs an emulated lab and prints one JSON document naming the run and its files, exit 0', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-cli-'));
    const r = await bench(['nightly', '--lab', 'test/run/fixtures/labs/small.yaml', '--out', out, '--workers', '2', '--json']);
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ lab: 'small-emulated', exitCode: 0, ran: 4, recorded: 0, counts: { total: 4, pass: 4 } });
    for (const f of Object.values(doc.files as Record<string, string>)) expect(existsSync(f)).toBe(true);
    expect(doc.runDir).toBe(join(out, doc.runId));
    // Progress went to stderr, one line per job.
    expect(r.stderr.match(/✓ pass|pass /g)?.length).toBeGreaterThanOrEqual(4);
  });

  it('refuses a bad lab file with exit 2, naming the file, line and field', async () => {
    const r = await bench(['nightly', '--lab', 'test/run/fixtures/labs/bad-choice-value.yaml', '--out', mkdtempSync(join(tmpdir(), 'nightly-cli-'))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('test/run/fixtures/labs/bad-choice-value.yaml:11 hosts[1].choices.saveChunking');
    expect(r.stderr).toMatch(/per-packet.*packed/);
  });

  it('refuses a lab file whose scenarios are missing with exit 2 at the scenarios line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightly-cli-'));
    const file = join(dir, 'lab.yaml');
    writeFileSync(file, 'version: 1\nkind: emulated\nname: x\nseeds: [1]\nscenarios: nowhere\nhosts: [{ name: a, build: b }]\nguests: [g]\n');
    const r = await bench(['nightly', '--lab', file, '--out', dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${file}:5 scenarios: no such scenario file or directory`);
  });

  it('resumes a run killed with SIGKILL mid-run: every planned job recorded exactly once', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-kill-'));
    const child = execa('node', ['bin/bench.js', 'nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--workers', '1'], { reject: false });
    const journalLines = (): string[] => {
      const run = readdirSync(out).find((d) => d.endsWith('Z') || /Z-[0-9a-f]{4}$/.test(d));
      if (!run || !existsSync(join(out, run, 'journal.jsonl'))) return [];
      return readFileSync(join(out, run, 'journal.jsonl'), 'utf8').split('\n');
    };
    // Kill it once a few jobs are recorded: far from the end of its jobs (over a hundred).
    while (journalLines().filter((l) => l.includes('"t":"end"')).length < 5) {
      if (child.exitCode !== null) throw new Error(`the run ended before it could be killed: ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await child;
    expect(journalLines().some((l) => l.includes('"t":"run-end"'))).toBe(false);
    const runId = readdirSync(out).find((d) => /Z-[0-9a-f]{4}$/.test(d))!;

    const r = await bench(['nightly', '--lab', 'lab/emulated.yaml', '--out', out, '--resume', runId, '--json']);
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.recorded).toBeGreaterThanOrEqual(5);
    // The planned jobs, as the run wrote them (lab/emulated.yaml's count grows with its scenarios).
    const plan = JSON.parse(readFileSync(join(out, runId, 'plan.json'), 'utf8')) as { jobs: { jobId: string }[] };
    const planned = plan.jobs.length;
    expect(planned).toBeGreaterThan(100);
    expect(doc.recorded + doc.ran).toBe(planned);
    const ends = journalLines().filter((l) => l.includes('"t":"end"')).map((l) => (JSON.parse(l) as { jobId: string }).jobId);
    expect(ends).toHaveLength(planned);
    expect(new Set(ends).size).toBe(planned);
    expect(new Set(ends)).toEqual(new Set(plan.jobs.map((j) => j.jobId)));
  });

  it('runs a Hyper-V lab on the lab run engine: an unreachable host ends its jobs as errors, with reports, exit 3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightly-cli-'));
    const lab = 'test/fixtures/lab/unreachable-lab.yaml'; // loopback, closed port, missing key: no traffic
    const out = join(dir, 'results');
    const r = await bench(['nightly', '--lab', lab, '--out', out, '--json']);
    expect(r.exitCode).toBe(3);
    const doc = JSON.parse(r.stdout) as { runDir: string; counts: { error: number; pass: number } };
    expect(doc.counts.error).toBeGreaterThan(0);
    expect(doc.counts.pass).toBe(0);
    for (const f of ['plan.json', 'journal.jsonl', 'summary.json', 'junit.xml', 'report.html', 'summary.txt']) {
      expect(existsSync(join(doc.runDir, f)), f).toBe(true);
    }
  });
});

describe('bench explore --workers', () => {
  it('prints the same result with two workers as in process', async () => {
    const args = ['explore', 'bench/scenarios/01-idle-save-restore.yaml', '--seed', '3', '--json'];
    const [one, two] = await Promise.all([bench([...args, '--workers', '1']), bench([...args, '--workers', '2'])]);
    expect(one.exitCode).toBe(0);
    expect(two.exitCode).toBe(0);
    const strip = (s: string) => ({ ...JSON.parse(s), durationMs: 0 });
    expect(strip(two.stdout)).toEqual(strip(one.stdout));
    expect(two.stderr).toMatch(/explore: \d+\/\d+ schedules \(2 workers\)/);
  });

  it('refuses --workers 0 with exit 2', async () => {
    const r = await bench(['explore', 'bench/scenarios/01-idle-save-restore.yaml', '--workers', '0']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--workers must be a positive integer/);
  });
});
