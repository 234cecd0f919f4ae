// `bench run` as a user runs it: --dry-run prints the plan and connects to nothing, the
// plan is the same on every call, and bad input is exit 2 with file and line.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    const pa = JSON.parse(a.stdout) as { plan: { digest: string; jobs: Array<{ jobId: string; partner?: string; attach: string; notApplicable?: string }> } };
    const pb = JSON.parse(b.stdout) as typeof pa;
    expect(pa.plan).toEqual(pb.plan);
    // 3 hosts x 2 templates for the save scenario, the hv-a/hv-b pair both ways for the
    // migration, and a loopback job per host for each scenario.
    expect(pa.plan.jobs).toHaveLength(6 + 4 + 6);
    // Each job names its attach mode; none pairs a VM's driver with the loopback-only workstation.
    expect(pa.plan.jobs.every((j) => j.attach === 'loopback' || j.attach === 'vm-handle')).toBe(true);
    expect(pa.plan.jobs.filter((j) => j.notApplicable).map((j) => j.jobId).sort()).toEqual([
      'idle-save-restore+ubuntu-2404@workstation=1', 'idle-save-restore+windows-2025@workstation=1',
      'migrate-and-back+loopback@hv-a=1', 'migrate-and-back+loopback@hv-b=1', 'migrate-and-back+loopback@workstation=1',
    ]);
    expect(pa.plan.jobs.filter((j) => j.partner).map((j) => j.jobId).sort()).toEqual([
      'migrate-and-back+ubuntu-2404@hv-a@hv-b=1', 'migrate-and-back+ubuntu-2404@hv-b@hv-a=1', 'migrate-and-back+windows-2025@hv-a@hv-b=1', 'migrate-and-back+windows-2025@hv-b@hv-a=1',
    ]);
  });

  it('refuses a scenario whose device has no control interface (a twins-only module) with exit 2, before connecting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-cmd-'));
    writeFileSync(join(dir, 'twins-only.ts'), `import blockq from '${join(process.cwd(), 'devices/blockq/device.ts')}';\nexport default { ...blockq, name: 'twins-only', control: undefined };\n`);
    const scenario = join(dir, 'twins-only.yaml');
    writeFileSync(scenario, readFileSync('devices/blockq/scenarios/01-save-restore.yaml', 'utf8').replace('device: ../device.ts', 'device: ./twins-only.ts'));
    const r = bench('run', '--lab', 'lab/example.yaml', '--dry-run', '--scenario', scenario);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${scenario} device: device twins-only has no control interface for a real lab`);
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
    const id = bench('run', '--lab', 'lab/example.yaml', '--run-id', 'no spaces please', '--out', mkdtempSync(join(tmpdir(), 'run-cmd-')));
    expect(id.code).toBe(2);
    expect(id.stderr).toMatch(/run id "no spaces please" must be/);
  });

  it('ends every job of a lab it cannot reach as an error that says why, still writes the reports, and exits 3', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-cmd-'));
    const lab = 'test/fixtures/lab/unreachable-lab.yaml';
    const out = join(dir, 'results');
    const r = bench('run', '--lab', lab, '--scenario', 'bench/scenarios/01-idle-save-restore.yaml', '--template', 'ubuntu-2404', '--out', out, '--run-id', 'r1', '--quarantine', 'lab/quarantine.yaml', '--nightly');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^error +idle-save-restore\+ubuntu-2404@a=1 +no host of build 1 is left in the run \(a: preflight: cannot reach the host: .*missing-key/m);
    expect(r.stdout).toMatch(/evidence: .*r1/);
    for (const f of ['plan.json', 'journal.jsonl', 'summary.json', 'junit.xml', 'report.html']) expect(existsSync(join(out, 'r1', f))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'r1', 'summary.json'), 'utf8')) as { jobs: Array<{ verdict: string }> };
    expect(summary.jobs.map((j) => j.verdict)).toEqual(['error']);
    // The nightly paragraph, and the run in the history index beside the run directories.
    expect(readFileSync(join(out, 'r1', 'summary.txt'), 'utf8')).toMatch(/^LAB ERRORS: run r1 on unreachable-lab, 1 jobs: 0 pass, 0 diverge, 0 hang, 1 error\. .*Still failing: idle-save-restore on 1 \/ Ubuntu 24\.04: error\. Report: .*report\.html\n$/);
    expect(existsSync(join(out, 'history.sqlite'))).toBe(true);
    // The lab's lock is gone with the run.
    expect(readdirSync(out).filter((f) => f.startsWith('.lock-'))).toEqual([]);
  });
});
