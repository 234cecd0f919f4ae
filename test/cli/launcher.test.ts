// bin/bench.js started by a Node older than the bench needs: it runs the bench on the Node
// `npm ci` installed in node_modules, or says exactly what to run; and `npx bench` on such
// a machine prints no npm engine warning on every call.
//
// These need an old Node on the machine (Debian's /usr/bin/node is 20 here; BENCH_OLD_NODE
// names another). Where there is none, the case they cover cannot happen, and they skip.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

function oldNode(): string | null {
  for (const c of [process.env.BENCH_OLD_NODE, '/usr/bin/node', '/usr/local/bin/node']) {
    if (!c || !existsSync(c)) continue;
    const v = execFileSync(c, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
    const [maj, min] = v.split('.').map(Number) as [number, number];
    if (maj < 22 || (maj === 22 && min < 12)) return c;
  }
  return null;
}
const OLD = oldNode();

describe.skipIf(OLD === null)('bin/bench.js on an old Node', () => {
  it('runs the bench on the Node installed in node_modules, exit codes and output intact', async () => {
    const out = mkdtempSync(join(tmpdir(), 'launcher-'));
    const ok = await execa(OLD!, ['bin/bench.js', 'emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--out', out, '--json'], { reject: false });
    expect(ok.stderr).not.toContain('too old');
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ kind: 'emulate', passed: 1 });
    const bad = await execa(OLD!, ['bin/bench.js', 'emulate', 'no/such.yaml'], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('no/such.yaml');
  });

  it('passes a SIGTERM on to the bench it started', async () => {
    const out = mkdtempSync(join(tmpdir(), 'launcher-'));
    // An emulated lab with many seeds, so the nightly is still running when the signal
    // comes, however fast the machine (lab/emulated.yaml's two hundred jobs take about a second).
    const lab = join(out, 'long-lab.yaml');
    const seeds = Array.from({ length: 100 }, (_, i) => i + 1).join(', ');
    writeFileSync(lab, `version: 1\nkind: emulated\nname: emulator\nscenarios: ${resolve('bench/scenarios')}\nseeds: [${seeds}]\nhosts:\n  - { name: emu-defaults, build: emu-ws2022-like }\nguests: [linux-twin]\n`);
    const runs = join(out, 'runs');
    const child = execa(OLD!, ['bin/bench.js', 'nightly', '--lab', lab, '--out', runs, '--workers', '1'], { reject: false });
    // Wait until the bench has begun writing its run, then signal the launcher.
    for (const until = Date.now() + 30_000; Date.now() < until && !(existsSync(runs) && readdirSync(runs, { recursive: true }).some((f) => String(f).endsWith('journal.jsonl'))); ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    const r = await child;
    expect(r.signal ?? r.exitCode).toBeTruthy();
    // The bench itself is gone too: nothing still writes the run directory.
    const size = (): number => readdirSync(runs, { recursive: true }).length;
    const before = size();
    await new Promise((r) => setTimeout(r, 1000));
    expect(size()).toBe(before);
  });

  it('says exactly what to run when node_modules has no Node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'launcher-'));
    mkdirSync(join(dir, 'bin'));
    copyFileSync('bin/bench.js', join(dir, 'bin', 'bench.js'));
    const r = await execa(OLD!, [join(dir, 'bin', 'bench.js'), '--help'], { reject: false, cwd: dirname(dir) });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('is too old');
    expect(r.stderr).toContain('npm ci');
    expect(r.stderr).toContain('node_modules/.bin/node');
    expect(r.stderr).toContain('bin/bench.js');
  });

  it('npx bench prints no EBADENGINE warning', async () => {
    // npx as the machine has it, with the old Node first on PATH.
    const path = `${dirname(OLD!)}:${process.env.PATH ?? ''}`;
    const r = await execa('npx', ['bench', '--help'], { reject: false, env: { PATH: path }, extendEnv: true });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Usage: bench');
    expect(r.stderr).not.toContain('EBADENGINE');
  });
});
