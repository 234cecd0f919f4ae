// The commands a failure card offers for copying: quoted for a shell, carrying the scenario,
// seed, choices and fault modes; and, end to end, a failure of an emulated nightly run with a
// fault injected is reproduced by running those commands as printed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadLabFile } from '../../src/run/emulated/emulated-lab.ts';
import { runEmulatedNightly } from '../../src/run/emulated/nightly-emulated.ts';
import { choicesNote, commandLine, reproCommands, shellQuote } from '../../src/report/repro.ts';
import { loadSummary } from '../../src/report/summary-schema.ts';
import { job } from './support/fixtures.ts';
import { REPO } from './support/fixtures.ts';

describe('reproCommands', () => {
  it('checks the kept traces, re-runs and explores, each with the host build\'s choices, and with seed and faults', () => {
    const j = job({
      jobId: 'j1', seed: 42, verdict: 'diverge', scenario: 'ring full',
      evidence: { hostTrace: 'jobs/j1/host.jsonl', guestTrace: 'jobs/j1/guest.jsonl', minimizedScenario: 'jobs/j1/min.yaml' },
      reproduce: { scenarioFile: '/srv/scen/ring full.yaml', choices: { sendOrdering: 'ring-first', saveWhileActive: 'allow' }, faults: ['wrong-status', 'restore-twice'] },
    });
    expect(reproCommands(j).map((c) => commandLine(c.argv))).toEqual([
      "bench check --scenario '/srv/scen/ring full.yaml' --trace jobs/j1/host.jsonl --trace jobs/j1/guest.jsonl --choice saveWhileActive=allow --choice sendOrdering=ring-first",
      "bench emulate '/srv/scen/ring full.yaml' --seed 42 --choice saveWhileActive=allow --choice sendOrdering=ring-first --fault wrong-status --fault restore-twice",
      'bench emulate jobs/j1/min.yaml --seed 42 --choice saveWhileActive=allow --choice sendOrdering=ring-first --fault wrong-status --fault restore-twice',
      "bench explore '/srv/scen/ring full.yaml' --seed 42 --choice saveWhileActive=allow --choice sendOrdering=ring-first --fault wrong-status --fault restore-twice",
    ]);
    expect(choicesNote(j)).toContain('saveWhileActive: allow, sendOrdering: ring-first');
  });

  it('checks a lab job\'s host and guest traces, not the emulator\'s run beside them', () => {
    const j = job({ jobId: 'j3', verdict: 'diverge', evidence: { trace: 'jobs/j3/emulator.jsonl', hostTrace: 'jobs/j3/host.jsonl', guestTrace: 'jobs/j3/guest.jsonl' }, reproduce: { scenarioFile: 's.yaml' } });
    expect(commandLine(reproCommands(j)[0]!.argv)).toBe('bench check --scenario s.yaml --trace jobs/j3/host.jsonl --trace jobs/j3/guest.jsonl');
  });

  it('names the scenario when the run did not record its file, and offers no check without a trace', () => {
    const cmds = reproCommands(job({ jobId: 'j2', scenario: 'idle', verdict: 'hang' }));
    expect(cmds.map((c) => c.argv[1])).toEqual(['emulate', 'explore']);
    expect(commandLine(cmds[0]!.argv)).toBe("bench emulate '<file of scenario idle>' --seed 1");
  });

  // Invariant: a quoted argument reads back, through a real shell, as exactly itself.
  it('quotes any argument so that sh reads it back unchanged', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', minLength: 1 }).filter((s) => !s.includes('\0')), { minLength: 1, maxLength: 4 }), (args) => {
        const out = execFileSync('sh', ['-c', `printf '%s\\0' ${args.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
        expect(out.split('\0').slice(0, -1)).toEqual(args);
      }),
      { numRuns: 40 },
    );
  });
});

describe('a failure of an emulated nightly, reproduced with the commands its card prints', () => {
  it('exits 1 again for bench check on the kept trace, and for bench emulate with the seed and fault', async () => {
    const lab = await loadLabFile(join(REPO, 'test/run/fixtures/labs/small.yaml'));
    if (lab.kind !== 'emulated') throw new Error('fixture lab is not emulated');
    const out = mkdtempSync(join(tmpdir(), 'bench-repro-'));
    const r = await runEmulatedNightly({ lab, outRoot: out, reporters: ['json'], workers: 1, faults: ['wrong-status'] });
    const summary = await loadSummary(join(r.runDir, 'summary.json'));
    const failed = summary.jobs.find((j) => j.verdict === 'diverge');
    expect(failed, 'the injected fault makes a job diverge').toBeDefined();
    expect(failed!.reproduce).toMatchObject({ scenarioFile: expect.stringMatching(/bench\/scenarios\/\d\d-[\w-]+\.yaml$/), faults: ['wrong-status'] });
    const cmds = reproCommands(failed!);
    const run = (argv: string[]) => spawnSync(process.execPath, [join(REPO, 'bin/bench.js'), ...argv.slice(1), '--json'], { cwd: r.runDir, encoding: 'utf8', timeout: 120_000 });
    const check = run(cmds.find((c) => c.argv[1] === 'check')!.argv);
    expect(check.status, check.stderr).toBe(1);
    expect(JSON.parse(check.stdout).result.class).toBe(failed!.divergenceClass);
    const emulate = run(cmds.find((c) => c.argv[1] === 'emulate')!.argv);
    expect(emulate.status, emulate.stderr).toBe(1);
    // Without the fault the same scenario and seed pass: the fault is what the command reproduces.
    const clean = run(cmds.find((c) => c.argv[1] === 'emulate')!.argv.filter((a) => a !== '--fault' && a !== 'wrong-status'));
    expect(clean.status, clean.stderr).toBe(0);
  }, 300_000);
});
