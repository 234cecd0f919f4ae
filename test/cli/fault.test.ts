// `--fault NAME` on emulate, explore and the emulated nightly: a user asks the emulator to
// imitate a platform bug and watches the bench catch it, with the divergence class the
// fault table (src/vmbus/faults.ts) says a checker must see.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAULT_CLASS, FAULT_MODES } from '../../src/vmbus/faults.ts';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });

describe('--fault', () => {
  it('is listed with every fault name in the help of emulate, explore and nightly', async () => {
    for (const cmd of ['emulate', 'explore', 'nightly']) {
      const r = await bench([cmd, '--help']);
      expect(r.exitCode).toBe(0);
      const help = r.stdout.replace(/\s+/g, ' ');
      for (const f of FAULT_MODES) expect(help, `${cmd} --help`).toContain(f);
    }
  });

  it.each(FAULT_MODES)('emulate --fault %s: the suite fails with the class the fault table names', async (fault) => {
    const out = mkdtempSync(join(tmpdir(), 'fault-'));
    const r = await bench(['emulate', 'bench/scenarios', '--fault', fault, '--out', out, '--json']);
    expect(r.exitCode).toBe(1);
    const doc = JSON.parse(r.stdout) as { scenarios: { verdict: string; violations: { class: string }[]; faultsFired?: string[] }[] };
    const caught = doc.scenarios.filter((s) => s.faultsFired?.includes(fault));
    expect(caught.length).toBeGreaterThan(0);
    for (const s of caught) {
      expect(s.verdict).toBe('fail');
      expect(s.violations.some((v) => FAULT_CLASS[fault].includes(v.class))).toBe(true);
    }
    // A scenario where the fault did not act passes and says so.
    for (const s of doc.scenarios.filter((x) => !x.faultsFired?.includes(fault))) expect(s.verdict).toBe('pass');
  });

  it('emulate says when an asked-for fault did not act in a scenario', async () => {
    const r = await bench(['emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--fault', 'lose-ring-tail-at-migration', '--out', mkdtempSync(join(tmpdir(), 'fault-'))]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('fault lose-ring-tail-at-migration did not act in this run');
  });

  it('refuses an unknown fault with exit 2, listing the names', async () => {
    for (const cmd of [['emulate', 'bench/scenarios'], ['explore', 'bench/scenarios/01-idle-save-restore.yaml']]) {
      const r = await bench([...cmd, '--fault', 'drop-everything']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('--fault: unknown fault "drop-everything"');
      expect(r.stderr).toContain('restore-twice');
    }
  });

  it('explore --fault restore-twice finds failing schedules, in process and across workers alike', async () => {
    const args = ['explore', 'bench/scenarios/02-inflight-host-transactions.yaml', '--fault', 'restore-twice', '--ops', 'save-restore', '--json'];
    const one = await bench([...args, '--workers', '1']);
    const two = await bench([...args, '--workers', '2']);
    expect(one.exitCode).toBe(1);
    expect(two.exitCode).toBe(1);
    const a = JSON.parse(one.stdout);
    const b = JSON.parse(two.stdout);
    expect(a.failures.length).toBeGreaterThan(0);
    expect(a.failures.flatMap((f: { violations: { class: string }[] }) => f.violations.map((v) => v.class))).toContain('duplicated');
    expect(b.failures.length).toBe(a.failures.length);
    // Without the fault the same exploration passes.
    expect((await bench(args.filter((x) => x !== '--fault' && x !== 'restore-twice'))).exitCode).toBe(0);
  });

  it('nightly --fault wrong-status on an emulated lab reports a status divergence, and a resume keeps the fault', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fault-nightly-'));
    const r = await bench(['nightly', '--lab', 'test/run/fixtures/labs/small.yaml', '--out', out, '--workers', '1', '--fault', 'wrong-status', '--json']);
    expect(r.exitCode).toBe(1);
    const doc = JSON.parse(r.stdout);
    const summary = JSON.parse(readFileSync(doc.files.summary, 'utf8'));
    expect(summary.jobs.length).toBe(4);
    for (const j of summary.jobs) expect(j).toMatchObject({ verdict: 'diverge', divergenceClass: 'status' });
    expect(JSON.parse(readFileSync(join(doc.runDir, 'faults.json'), 'utf8'))).toEqual(['wrong-status']);
    // Resuming with another fault is refused: one run, one set of faults.
    const again = await bench(['nightly', '--lab', 'test/run/fixtures/labs/small.yaml', '--out', out, '--resume', doc.runId, '--fault', 'restore-twice']);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('started with --fault wrong-status');
  });

  it('nightly --fault on a Hyper-V lab is a usage error', async () => {
    expect(existsSync('lab/example.yaml')).toBe(true);
    const r = await bench(['nightly', '--lab', 'lab/example.yaml', '--out', mkdtempSync(join(tmpdir(), 'fault-')), '--fault', 'restore-twice']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('emulated labs');
  });
});
