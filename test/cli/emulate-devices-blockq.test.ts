// `bench emulate --devices c-linux` on blockq (devices/blockq): its scenarios run
// with blockq's C VSP on the hosts and its C Linux guest driver (devices/blockq/c/
// guest-linux) as the VM's guest, both compiled to WebAssembly, exit 0 on seeds 1-3, and
// `bench check` explains every trace; explore walks them too. What blockq has no C
// driver for is bad input (exit 2) naming it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });
const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const SCENARIOS = [
  ['01-save-restore', 'blockq-save-restore'], ['02-migrate', 'blockq-migrate'], ['03-checkpoint', 'blockq-checkpoint'],
  ['04-rescind-and-reoffer', 'blockq-rescind-and-reoffer'], ['05-guest-close-and-reopen', 'blockq-guest-close-and-reopen'],
] as const;

describe.skipIf(!toolchain)('bench emulate devices/blockq/scenarios --devices c-linux', () => {
  it('passes every scenario on seeds 1-3 with the C guest driver\'s own events, and bench check explains each trace', async () => {
    for (const seed of ['1', '2', '3']) {
      const out = mkdtempSync(join(tmpdir(), `emu-blockq-c-linux-${seed}-`));
      const r = await bench(['emulate', 'devices/blockq/scenarios', '--devices', 'c-linux', '--seed', seed, '--out', out, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ passed: SCENARIOS.length, failed: 0 });
      for (const [file, name] of SCENARIOS) {
        const trace = join(out, `${name}.jsonl`);
        const events = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        const guest = events.filter((e) => e.side === 'guest');
        // The driver's: a Linux guest traces no Started and never queues; it answered Events with replies of several sizes.
        expect(guest.some((e) => e.ev === 'pkt.queued' || e.state === 'Started'), name).toBe(false);
        expect(new Set(guest.filter((e) => e.ev === 'pkt.complete').map((e) => e.len)).size, name).toBeGreaterThan(1);
        const check = await bench(['check', '--scenario', `devices/blockq/scenarios/${file}.yaml`, '--trace', trace, '--no-minimise']);
        expect(check.exitCode, check.stdout + check.stderr).toBe(0);
        expect(check.stdout).toMatch(new RegExp(`^pass {2}${name}: all \\d+ events explained by the emulator`, 'm'));
      }
    }
  }, 240_000);

  it('explore --devices c-linux walks blockq\'s save points with the C guest driver, exit 0', async () => {
    const r = await bench(['explore', 'devices/blockq/scenarios/02-migrate.yaml', '--devices', 'c-linux', '--max-schedules', '6', '--workers', '1', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ scenario: 'blockq-migrate', schedules: 6, failures: [] });
  }, 120_000);

  it('c-windows is refused as bad input (exit 2): blockq has no C Windows guest driver', async () => {
    const r = await bench(['emulate', 'devices/blockq/scenarios/01-save-restore.yaml', '--devices', 'c-windows', '--out', mkdtempSync(join(tmpdir(), 'emu-blockq-win-'))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/blockq has no C Windows guest driver; use c-linux/);
  });
});
