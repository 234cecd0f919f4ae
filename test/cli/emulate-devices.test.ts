// `bench emulate --devices c`: the scenario runs on the C VSP compiled to WebAssembly;
// `--devices c-linux` adds the C Linux guest driver as the VM's guest, `c-windows` the C
// Windows guest driver (one PnP device per channel). Every bench scenario passes on each
// and its traces pass bench check; a bad value, or what a guest cannot run, is bad input (exit 2).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });
const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe('bench emulate --devices', () => {
  it.skipIf(!toolchain)('c: runs save and restore scenarios on the C VSP, every property holding, exit 0', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-c-'));
    const r = await bench(['emulate', 'bench/scenarios/02-inflight-host-transactions.yaml', 'bench/scenarios/07-pause-resume.yaml', '--devices', 'c', '--out', out, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ passed: 2, failed: 0 });
    // The host's events are the C VSP's: it infers pkt.queued and cannot know libLen.
    const events = readFileSync(join(out, 'inflight-host-transactions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const saves = events.filter((e) => e.ev === 'pkt.save');
    expect(saves.length).toBeGreaterThan(0);
    expect(saves.every((e) => e.libLen === 0)).toBe(true);
  });

  it('refuses a value other than twin, c, c-linux or c-windows with exit 2', async () => {
    const r = await bench(['emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--devices', 'cobol', '--out', mkdtempSync(join(tmpdir(), 'emu-'))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--devices must be one of twin, c, c-linux, c-windows, not 'cobol'/);
  });

  it.skipIf(!toolchain)('c: all twelve bench scenarios pass (migration, checkpoint apply, rescind, failing restore, FORCE_NEW_CHANNEL, guest close included), and bench check explains them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-c-all-'));
    const r = await bench(['emulate', 'bench/scenarios', '--devices', 'c', '--out', out, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ passed: 12, failed: 0 });
    for (const [file, name] of [['05-migrate-and-back', 'migrate-and-back'], ['11-rescind-and-reoffer', 'rescind-and-reoffer'], ['12-rescind-and-guest-reopen', 'rescind-and-guest-reopen']]) {
      const check = await bench(['check', '--scenario', `bench/scenarios/${file}.yaml`, '--trace', join(out, `${name}.jsonl`), '--no-minimise']);
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toMatch(new RegExp(`^pass {2}${name}: all \\d+ events explained by the emulator`, 'm'));
    }
    // The rescinds are the C VSP's: its cancels, and the failing restore's fallback on channel 1.
    const events = readFileSync(join(out, 'rescind-and-reoffer.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(events.filter((e) => e.ev === 'ch.rescind').map((e) => e.ch)).toEqual(expect.arrayContaining([1, 2]));
    expect(events.some((e) => e.side === 'host' && e.ev === 'pkt.cancel')).toBe(true);
  }, 180_000);

  it.skipIf(!toolchain)('c: a restore the C VSP fails falls back to a rescind and a new offer, from the command line, seeds 1 to 3 checked', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-c-fail-'));
    const scenario = join(out, 'restore-fails.yaml');
    writeFileSync(scenario, [
      'name: restore-fails',
      'channels: [{ id: 0 }]',
      'steps:',
      '  - { op: host-send, count: 4, size: 128, hold: 30 }',
      '  - { op: run, ms: 1 }',
      '  - { op: save }',
      '  - { op: restore, fail: [0] }',
      '  - { op: host-send, count: 2, size: 64 }',
      '  - { op: settle }',
      '',
    ].join('\n'));
    for (const seed of ['1', '2', '3']) {
      const dir = join(out, `seed-${seed}`);
      const r = await bench(['emulate', scenario, '--devices', 'c', '--seed', seed, '--out', dir, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const events = readFileSync(join(dir, 'restore-fails.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const rescind = events.findIndex((e) => e.ev === 'ch.rescind');
      expect(rescind).toBeGreaterThan(events.findIndex((e) => e.ev === 'pkt.restore'));
      expect(events.filter((e) => e.side === 'host' && e.ev === 'pkt.cancel').map((e) => e.tx)).toEqual([1]);
      const check = await bench(['check', '--scenario', scenario, '--trace', join(dir, 'restore-fails.jsonl'), '--no-minimise']);
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    }
  }, 180_000);

  it.skipIf(!toolchain)('c-linux: all twelve bench scenarios pass with the C Linux guest driver as the guest, and bench check explains them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-c-linux-'));
    const twelve = readdirSync('bench/scenarios').filter((f) => f.endsWith('.yaml')).map((f) => join('bench/scenarios', f));
    expect(twelve).toHaveLength(12);
    const r = await bench(['emulate', ...twelve, '--devices', 'c-linux', '--out', out, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ passed: 12, failed: 0 });
    for (const f of twelve) {
      const name = /^name: (\S+)/m.exec(readFileSync(f, 'utf8'))![1]!;
      const trace = join(out, `${name}.jsonl`);
      // The guest's events are the driver's: it traces no Started, and never queues.
      const guest = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.side === 'guest');
      expect(guest.some((e) => e.ev === 'pkt.queued' || e.state === 'Started'), name).toBe(false);
      const check = await bench(['check', '--scenario', f, '--trace', trace, '--no-minimise']);
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    }
  }, 240_000);

  it.skipIf(!toolchain)('c-windows: every bench scenario passes with the C Windows guest driver as the guest (one device per channel), and bench check explains them on seeds 1 to 3', async () => {
    const all = readdirSync('bench/scenarios').filter((f) => f.endsWith('.yaml')).map((f) => join('bench/scenarios', f));
    expect(all).toHaveLength(12);
    for (const seed of ['1', '2', '3']) {
      const out = mkdtempSync(join(tmpdir(), `emu-c-windows-${seed}-`));
      const r = await bench(['emulate', ...all, '--devices', 'c-windows', '--seed', seed, '--out', out, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ passed: 12, failed: 0 });
      for (const f of all) {
        const name = /^name: (\S+)/m.exec(readFileSync(f, 'utf8'))![1]!;
        const trace = join(out, `${name}.jsonl`);
        // The guest's events are the driver's: a KMCL client traces its own Enabled and Started, and never pkt.queued.
        const guest = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.side === 'guest');
        expect(guest.filter((e) => e.ev === 'ch.state').slice(0, 4).map((e) => e.state), name).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
        expect(guest.some((e) => e.ev === 'pkt.queued'), name).toBe(false);
        if (name === 'rescind-and-reoffer') {
          // Each rescinded instance's device is removed (its client suspended, then closed) and the new one is a new device.
          const states = guest.filter((e) => e.ev === 'ch.state' && e.ch === 1).map((e) => e.state).join(' ');
          expect(states).toContain('Active Paused Closed Enabled Opened Started Active');
        }
        const check = await bench(['check', '--scenario', f, '--trace', trace, '--no-minimise']);
        expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      }
    }
  }, 400_000);

  it.skipIf(!toolchain)('c-windows: a rescind of a VM\'s only channel runs (its device removed, the new one added in the same step); closing it is refused (exit 2): the driver\'s control device goes with its last device', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-c-windows-one-'));
    const rescind = join(out, 'one-rescind.yaml');
    writeFileSync(rescind, ['name: one-rescind', 'channels: [{ id: 0 }]', 'steps:', '  - { op: guest-send, count: 2, size: 64, mode: hold, hold: 50 }',
      '  - { op: rescind, channel: 0 }', '  - { op: save }', '  - { op: restore }', '  - { op: guest-send, count: 1, size: 64 }', '  - { op: settle }', ''].join('\n'));
    const r = await bench(['emulate', rescind, '--devices', 'c-windows', '--out', join(out, 'r'), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const trace = join(out, 'r', 'one-rescind.jsonl');
    const guest = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.side === 'guest');
    // The two held requests end cancelled at the rescind; the new device numbers on from 3.
    expect(guest.filter((e) => e.ev === 'pkt.cancel').map((e) => e.tx)).toEqual([1, 2]);
    expect(guest.filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1, 2, 3]);
    const check = await bench(['check', '--scenario', rescind, '--trace', trace, '--no-minimise']);
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);

    const close = join(out, 'one-close.yaml');
    writeFileSync(close, ['name: one-close', 'channels: [{ id: 0 }]', 'steps:', '  - { op: guest-send, count: 2, size: 64 }', '  - { op: guest-close, channel: 0 }', '  - { op: guest-open, channel: 0 }', ''].join('\n'));
    const refused = await bench(['emulate', close, '--devices', 'c-windows', '--out', join(out, 'c')]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/one-close\.yaml:5.*steps\[1\]\.op.*step 2 \(guest-close\) leaves every channel closed/s);
    expect(existsSync(join(out, 'c', 'one-close.jsonl'))).toBe(false);
  });

  it.skipIf(!toolchain)('explore --devices c-linux runs the schedules with the C guest driver too, exit 0', async () => {
    const r = await bench(['explore', 'bench/scenarios/06-checkpoint-apply.yaml', '--devices', 'c-linux', '--max-schedules', '12', '--workers', '1', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ scenario: 'checkpoint-apply', schedules: 12, truncated: true, failures: [] });
    // The walk keys the C guest (as its image) and the C VSP: it decides these in place.
    expect(doc.ranInFull).toBe(0);
  });

  it.skipIf(!toolchain)('explore --devices c-windows walks with the C Windows guest keyed as its image, exit 0', async () => {
    const r = await bench(['explore', 'bench/scenarios/02-inflight-host-transactions.yaml', '--devices', 'c-windows', '--max-schedules', '24', '--workers', '1', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ scenario: 'inflight-host-transactions', schedules: 24, truncated: true, failures: [] });
    // The walk keys the C Windows guest (guest-windows-key.ts) and the C VSP: it decides these in place.
    expect(doc.ranInFull).toBe(0);
  });

  it.skipIf(!toolchain)('explore --devices c runs the schedules on the C VSP, exit 0', async () => {
    const r = await bench(['explore', 'bench/scenarios/06-checkpoint-apply.yaml', '--devices', 'c', '--max-schedules', '12', '--workers', '1', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ scenario: 'checkpoint-apply', schedules: 12, truncated: true, failures: [] });
    // The walk keys the C VSP (its device's keyDriver): it decides these in place.
    expect(doc.ranInFull).toBe(0);
  });
});
