// `bench check --guest-sends queue|wait`: which guest wrote the trace, where its sends
// filled their ring (src/check/replay.ts GuestSends). A C Linux guest's trace of a
// ring-full send followed by a host send passes as a waiting guest's (the flag, or a
// scenario whose devices say c-linux) and diverges as a queueing one's; a bad value is
// bad input (exit 2).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });
const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const SCENARIO = [
  'name: guest-ring-full-then-host',
  'channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }]',
  'steps:',
  '  - { op: guest-send, count: 60, size: 256, mode: deferred }',
  '  - { op: host-send, count: 20, size: 200, hold: 1 }',
  '  - { op: settle }',
];

describe('bench check --guest-sends', () => {
  it.skipIf(!toolchain)('a C Linux guest\'s ring-full trace: wait passes (exit 0), queue diverges (exit 1), and a scenario with devices: c-linux means wait', async () => {
    const out = mkdtempSync(join(tmpdir(), 'check-guest-sends-'));
    const scenario = join(out, 'ring-full.yaml');
    writeFileSync(scenario, `${SCENARIO.join('\n')}\n`);
    const emu = await bench(['emulate', scenario, '--devices', 'c-linux', '--out', out]);
    expect(emu.exitCode, emu.stderr).toBe(0);
    const trace = join(out, 'guest-ring-full-then-host.jsonl');
    const check = (more: string[], s = scenario) => bench(['check', '--scenario', s, '--trace', trace, '--no-minimise', ...more]);

    const wait = await check(['--guest-sends', 'wait']);
    expect(wait.exitCode, wait.stdout + wait.stderr).toBe(0);
    expect(wait.stdout).toMatch(/^pass {2}guest-ring-full-then-host: all \d+ events explained/m);

    const queue = await check(['--guest-sends', 'queue']);
    expect(queue.exitCode, queue.stdout + queue.stderr).toBe(1);
    expect(queue.stdout).toMatch(/DIVERGE/);
    // The report says which guest the model took the trace for.
    expect(queue.stdout).toMatch(/checked as a guest whose send queues .*: --guest-sends queue/);
    // Without the flag the scenario's devices (none: the twin, which queues) say.
    expect((await check([])).exitCode).toBe(1);

    const linux = join(out, 'ring-full-c-linux.yaml');
    writeFileSync(linux, `${[...SCENARIO, 'devices: c-linux'].join('\n')}\n`);
    const derived = await check([], linux);
    expect(derived.exitCode, derived.stdout + derived.stderr).toBe(0);
  }, 120_000);

  it('refuses a value other than queue or wait, and the flag with --properties-only, with exit 2', async () => {
    const bad = await bench(['check', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml', '--trace', 'test/fixtures/trace/no-final-newline.jsonl', '--guest-sends', 'sometimes']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--guest-sends sometimes: expected queue .* or wait/);
    const po = await bench(['check', '--properties-only', '--trace', 'test/fixtures/trace/no-final-newline.jsonl', '--guest-sends', 'wait']);
    expect(po.exitCode).toBe(2);
    expect(po.stderr).toMatch(/--guest-sends .* --properties-only/);
  });
});
