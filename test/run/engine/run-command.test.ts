// `bench run` as a user runs it: --dry-run prints the plan and connects to nothing, the
// plan is the same on every call, and bad input is exit 2 with file and line.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function bench(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/bench.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bench run', () => {
  it('prints the same plan on every --dry-run, as one JSON document', () => {
    const a = bench('run', '--lab', 'lab/example.yaml', '--dry-run', '--json', '--scenario', 'bench/scenarios/05-migrate-and-back.yaml', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml');
    const b = bench('run', '--lab', 'lab/example.yaml', '--dry-run', '--json', '--scenario', 'bench/scenarios/05-migrate-and-back.yaml', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml');
    expect(a.code).toBe(0);
    const pa = JSON.parse(a.stdout) as { plan: { digest: string; jobs: Array<{ jobId: string; partner?: string }> } };
    const pb = JSON.parse(b.stdout) as typeof pa;
    expect(pa.plan).toEqual(pb.plan);
    // 3 hosts x 2 templates for the save scenario, the hv-a/hv-b pair both ways for the migration.
    expect(pa.plan.jobs).toHaveLength(6 + 4);
    expect(pa.plan.jobs.filter((j) => j.partner).map((j) => j.jobId).sort()).toEqual([
      'migrate-and-back+ubuntu-2404@hv-a@hv-b=1', 'migrate-and-back+ubuntu-2404@hv-b@hv-a=1', 'migrate-and-back+windows-2025@hv-a@hv-b=1', 'migrate-and-back+windows-2025@hv-b@hv-a=1',
    ]);
  });

  it('refuses a bad quarantine file with exit 2, naming file, line and field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-cmd-'));
    const q = join(dir, 'quarantine.yaml');
    writeFileSync(q, 'entries:\n  - scenario: idle-save-restore\n    reason: known\n    until: tomorrow\n');
    const r = bench('run', '--lab', 'lab/example.yaml', '--dry-run', '--quarantine', q);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/quarantine\.yaml:4 entries\[0\]\.until: must be a date/);
  });

  it('refuses an unknown host or template with exit 2', () => {
    expect(bench('run', '--lab', 'lab/example.yaml', '--dry-run', '--host', 'nope').stderr).toMatch(/no host named nope/);
    const t = bench('run', '--lab', 'lab/example.yaml', '--dry-run', '--template', 'nope');
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--template: no template nope/);
  });
});
