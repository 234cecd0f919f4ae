// `bench emulate --devices c`: the scenario runs on the C VSP compiled to WebAssembly;
// a bad value, or a step the C VSP cannot do, is bad input (exit 2) naming where.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
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

  it('refuses a value other than twin or c with exit 2', async () => {
    const r = await bench(['emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--devices', 'cobol', '--out', mkdtempSync(join(tmpdir(), 'emu-'))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--devices must be 'twin' or 'c'/);
  });

  it.skipIf(!toolchain)('refuses a migration on the C VSP with exit 2, naming file, line and step', async () => {
    const r = await bench(['emulate', 'bench/scenarios/05-migrate-and-back.yaml', '--devices', 'c', '--out', mkdtempSync(join(tmpdir(), 'emu-'))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/05-migrate-and-back\.yaml:\d+ steps\[\d+\]\.op: devices: c cannot run 'migrate'/);
  });
});
