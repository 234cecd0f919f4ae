// README, "Test your own device": its commands work as written (blockq on its twins, then on
// its C VSP with --devices c, then with its C Linux guest too, --devices c-linux, which need
// clang and lld as the README says). Each `npx bench` line of
// the section's shell block is run (as `node bin/bench.js`, which `npx bench` starts) from
// the repository root and must exit 0; `npm start` is the emulated nightly, which
// test/run/emulated/nightly-command.test.ts runs. The section's claim about
// `--fault restore-twice` is run too.
import { readdirSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const readme = readFileSync('README.md', 'utf8');
const section = readme.slice(readme.indexOf('## Test your own device'), readme.indexOf('\n## ', readme.indexOf('## Test your own device') + 5));
const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
const commands = block
  .split('\n')
  .map((l) => l.replace(/\s+#.*$/, '').trim())
  .filter((l) => l.startsWith('npx bench '));

const run = (line: string) => execa('node', ['bin/bench.js', ...line.slice('npx bench '.length).split(/\s+/)], { reject: false });

describe('README: Test your own device', () => {
  it('has the walk-through: emulate, check, explore, check --properties-only on blockq, then emulate and check on its C VSP, then on its C Linux guest', () => {
    expect(commands.map((c) => c.split(' ')[2])).toEqual(['emulate', 'check', 'explore', 'check', 'emulate', 'check', 'emulate', 'check']);
    expect(commands[4]).toMatch(/--devices c(\s|$)/);
    expect(commands[6]).toContain('--devices c-linux');
    expect(block).toContain('npm start');
  });

  it('every bench command of it exits 0, in order (each uses what the one before wrote)', async () => {
    for (const c of commands) {
      const r = await run(c);
      expect(r.exitCode, `${c}\n${r.stderr}`).toBe(0);
    }
  }, 300_000); // nine CLI runs, an explore and two C driver builds among them, on a loaded machine

  it('the first with --fault restore-twice fails each scenario with duplicated, exit 1', async () => {
    const r = await run(`${commands[0]!} --fault restore-twice`);
    expect(r.exitCode).toBe(1);
    // Each scenario of the directory the command names fails, whatever their number.
    const dir = commands[0]!.split(/\s+/)[3]!;
    const scenarios = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).length;
    expect(scenarios).toBeGreaterThanOrEqual(3);
    expect(r.stdout.match(/^FAIL /gm)).toHaveLength(scenarios);
    expect(r.stdout.match(/duplicated/g)?.length).toBeGreaterThanOrEqual(scenarios);
  });
});
