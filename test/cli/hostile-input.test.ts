// The real `bench` on the inputs a hostile run found mishandled (issue 16): each is bad
// input, so exit 2 with a message naming the file and line, never an internal error or a
// hang.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false, timeout: 60_000 });

const LAUGHS =
  'name: laughs\n' +
  'a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n' +
  'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n' +
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n' +
  'steps: [*c]\n';

function scenarioFiles(): { dir: string; unresolved: string; laughs: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hostile-'));
  const unresolved = join(dir, 'unresolved.yaml');
  const laughs = join(dir, 'laughs.yaml');
  writeFileSync(unresolved, 'name: x\nsteps: [*nope]\n');
  writeFileSync(laughs, LAUGHS);
  return { dir, unresolved, laughs };
}

describe('bench on scenario YAML aliases', () => {
  it('emulate, check, explore and nightly exit 2 at the alias line, no internal error', async () => {
    const { dir, unresolved, laughs } = scenarioFiles();
    const trace = join(dir, 't.jsonl');
    writeFileSync(trace, '');
    const lab = join(dir, 'lab.yaml');
    writeFileSync(lab, `version: 1\nkind: emulated\nname: x\nseeds: [1]\nscenarios: ${unresolved}\nhosts: [{ name: a, build: b }]\nguests: [g]\n`);
    const runs = [
      [['emulate', unresolved, '--out', join(dir, 'o')], `${unresolved}:2`],
      [['emulate', laughs, '--out', join(dir, 'o')], `${laughs}:4`],
      [['check', '--scenario', unresolved, '--trace', trace], `${unresolved}:2`],
      [['explore', laughs], `${laughs}:4`],
      [['nightly', '--lab', lab, '--out', join(dir, 'results')], `${unresolved}:2`],
    ] as const;
    for (const [args, where] of runs) {
      const r = await bench([...args]);
      expect(r.stderr, args.join(' ')).not.toContain('internal error');
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(where);
    }
  });
});

describe('bench on paths that are not what they should be', () => {
  it('emulate --out naming an existing file exits 2 naming the path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-'));
    const file = join(dir, 'taken');
    writeFileSync(file, 'x');
    const r = await bench(['emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--out', file]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`--out ${file}: not a directory`);
  });

  it('a FIFO as scenario, trace or lab file is refused at once, not read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-'));
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    for (const args of [
      ['emulate', fifo],
      ['check', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml', '--trace', fifo],
      ['nightly', '--lab', fifo, '--out', dir],
      ['lab', 'check', '--lab', fifo],
    ]) {
      const r = await bench(args);
      expect(r.timedOut, args.join(' ')).toBe(false);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`${fifo}: not a regular file (it is a FIFO)`);
    }
  });

  it('a symlink loop as the scenario is reported as a loop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-'));
    execFileSync('ln', ['-s', join(dir, 's.yaml'), join(dir, 's.yaml')]);
    const r = await bench(['emulate', join(dir, 's.yaml')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('symbolic link loop');
  });

  it('check without --trace is a usage error, not a missing-event divergence', async () => {
    const r = await bench(['check', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("'--trace <file>'");
    expect(r.stdout).not.toContain('missing-event');
  });

  it('explore on a folder of several scenarios refuses with exit 2 instead of exploring the first', async () => {
    const r = await bench(['explore', 'bench/scenarios']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('explore takes one scenario file');
  });
});

describe('bench check on a trace with a blank line inside', () => {
  it('exits 2 naming the line as "empty line", as test/fixtures/trace/malformed says', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hostile-'));
    expect((await bench(['emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--out', out])).exitCode).toBe(0);
    const trace = join(out, 'idle-save-restore.jsonl');
    const lines = readFileSync(trace, 'utf8').split('\n');
    lines.splice(5, 0, '');
    writeFileSync(trace, lines.join('\n'));
    const r = await bench(['check', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml', '--trace', trace, '--no-minimise']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${trace}:6: empty line`);
  });
});

describe('commands that said something false', () => {
  it('bench run on an emulated lab says to use bench nightly', async () => {
    const r = await bench(['run', '--lab', 'lab/emulated.yaml', '--dry-run']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('bench nightly --lab lab/emulated.yaml');
    expect(r.stderr).not.toContain('unknown key');
  });

  it('real-lab run ids differ for runs started in the same minute', async () => {
    const { defaultRunId } = await import('../../src/run/real/lab-run.ts');
    const a = defaultRunId('lab', new Date('2026-12-06T03:00:01Z'));
    const b = defaultRunId('lab', new Date('2026-12-06T03:00:59Z'));
    expect(a).not.toBe(b);
  });

  it('nightly --run-id names the run directory', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hostile-'));
    const r = await bench(['nightly', '--lab', 'test/run/fixtures/labs/small.yaml', '--out', out, '--workers', '1', '--run-id', 'my-run', '--json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ runId: 'my-run', runDir: join(out, 'my-run') });
    const bad = await bench(['nightly', '--lab', 'test/run/fixtures/labs/small.yaml', '--out', out, '--run-id', '../escape']);
    expect(bad.exitCode).toBe(2);
  });
});

describe('bench check minimisation', () => {
  it('says on stderr that it minimises, and --minimise-time caps it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hostile-'));
    await bench(['emulate', 'bench/scenarios/05-migrate-and-back.yaml', '--out', out]);
    const file = join(out, 'migrate-and-back.jsonl');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const i = lines.findIndex((e) => e.ev === 'pkt.completion' && e.side === 'guest');
    lines[i]!.status = 'c0000001';
    writeFileSync(file, `${lines.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const r = await bench(['check', '--scenario', 'bench/scenarios/05-migrate-and-back.yaml', '--trace', file, '--minimise-time', '1', '--json']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('minimising: looking for a fault mode');
    const doc = JSON.parse(r.stdout);
    expect(doc.minimal === null ? doc.minimiseTimedOut : typeof doc.minimal.timedOut).toBeTruthy();
    const bad = await bench(['check', '--scenario', 'bench/scenarios/05-migrate-and-back.yaml', '--trace', file, '--minimise-time', 'soon']);
    expect(bad.exitCode).toBe(2);
  });
});

describe('bench check on host and guest files without bench events', () => {
  async function split(): Promise<{ dir: string; host: string; guest: string; bench: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-'));
    await bench(['emulate', 'bench/scenarios/06-checkpoint-apply.yaml', '--out', dir]);
    const events = readFileSync(join(dir, 'checkpoint-apply.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = { host: 0, guest: 0 };
    const out = { host: [] as string[], guest: [] as string[], bench: [] as string[] };
    for (const e of events) {
      const side = e.side as 'host' | 'guest' | 'bench';
      if (side === 'bench') out.bench.push(JSON.stringify({ ...e, at: { ...last } }));
      else {
        last[side] = e.seq as number;
        out[side].push(JSON.stringify(e));
      }
    }
    const files = { dir, host: join(dir, 'host.jsonl'), guest: join(dir, 'guest.jsonl'), bench: join(dir, 'bench.jsonl') };
    for (const k of ['host', 'guest', 'bench'] as const) writeFileSync(files[k], `${out[k].join('\n')}\n`);
    return files;
  }

  it('is an input error that says how to align them, not a divergence blaming a fault', async () => {
    const f = await split();
    const r = await bench(['check', '--scenario', 'bench/scenarios/06-checkpoint-apply.yaml', '--trace', f.host, '--trace', f.guest]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("none of these traces holds the bench's events");
    expect(r.stderr).toContain('--align FILE=KEY');
    expect(r.stdout).not.toContain('spurious');
  });

  it('--align places them by the at-marks of the bench\'s own file, and the run passes', async () => {
    const f = await split();
    const r = await bench(['check', '--scenario', 'bench/scenarios/06-checkpoint-apply.yaml', '--trace', f.bench, '--trace', f.host, '--trace', f.guest,
      '--align', `${f.host}=host`, '--align', `${f.guest}=guest`]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const bad = await bench(['check', '--scenario', 'bench/scenarios/06-checkpoint-apply.yaml', '--trace', f.bench, '--align', `${f.host}=host`]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('is not one of the --trace files');
  });
});
