// The real `bench check --properties-only` on a driver the sample model does not know:
// an emulator trace rewritten with other payloads, lengths, statuses and SaveBufs,
// consistently end to end (test/check/support/foreign-device.ts).
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { asForeignDevice } from '../check/support/foreign-device.ts';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });
const SCENARIO = 'bench/scenarios/05-migrate-and-back.yaml';

async function foreignTrace(): Promise<{ dir: string; file: string; events: TraceEvent[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'chk-props-'));
  expect((await bench(['emulate', SCENARIO, '--seed', '2', '--out', dir])).exitCode).toBe(0);
  const events = asForeignDevice(readFileSync(join(dir, 'migrate-and-back.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TraceEvent));
  const file = join(dir, 'foreign.jsonl');
  write(file, events);
  return { dir, file, events };
}
const write = (file: string, events: readonly TraceEvent[]) => writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);

describe('bench check --properties-only', () => {
  it('passes a foreign device (exit 0) that the full check fails with class payload (exit 1), and says what it did not check', async () => {
    const { file } = await foreignTrace();
    const full = await bench(['check', '--scenario', SCENARIO, '--trace', file, '--no-minimise', '--json']);
    expect(full.exitCode).toBe(1);
    expect(JSON.parse(full.stdout).result.class).toBe('payload');

    const json = await bench(['check', '--properties-only', '--scenario', SCENARIO, '--trace', file, '--json']);
    expect(json.exitCode).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ mode: 'properties-only', scenario: 'migrate-and-back', result: { verdict: 'pass' } });
    expect(doc.notChecked.join(' ')).toMatch(/payload rules/);
    expect(doc.notChecked.join(' ')).toMatch(/status rules/);

    // Without --scenario, the trace's own name is used.
    const text = await bench(['check', '--properties-only', '--trace', file]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^pass \(properties only\)\s+migrate-and-back/m);
    expect(text.stdout).toMatch(/NOT checked: payload rules/);
    expect(text.stdout).toMatch(/NOT checked: status rules/);
  });

  it('fails (exit 1, lost) when a completion is removed', async () => {
    const { file, events } = await foreignTrace();
    const i = events.findLastIndex((e) => e.ev === 'pkt.completion');
    write(file, events.filter((_, j) => j !== i));
    const r = await bench(['check', '--properties-only', '--trace', file, '--json']);
    expect(r.exitCode).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.result).toMatchObject({ verdict: 'diverge', class: 'lost' });
    expect(doc.result.failedProperties).toContain('exactly-once-completion');
    const text = await bench(['check', '--properties-only', '--trace', file]);
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toMatch(/^FAIL \(properties only\)\s+migrate-and-back: lost/m);
    expect(text.stdout).toMatch(/NOT checked: payload rules/);
  });

  it("checks a run's host and guest files merged on their bench events, naming the guest file's line", async () => {
    const { dir, events } = await foreignTrace();
    const split = (side: string) => events.filter((e) => e.side === side || e.side === 'bench').map((e, i) => ({ ...e, seq: i + 1, src: `lab-${side}` }) as TraceEvent);
    const host = join(dir, 'host.jsonl');
    const guest = join(dir, 'guest.jsonl');
    write(host, split('host'));
    write(guest, split('guest'));
    const ok = await bench(['check', '--properties-only', '--trace', host, '--trace', guest, '--json']);
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout).result.verdict).toBe('pass');

    const g = split('guest');
    const i = g.findIndex((e) => e.ev === 'pkt.recv');
    write(guest, [...g.slice(0, i + 1), g[i]!, ...g.slice(i + 1)].map((e, j) => ({ ...e, seq: j + 1 })));
    const bad = await bench(['check', '--properties-only', '--trace', host, '--trace', guest, '--json']);
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout).result).toMatchObject({ class: 'duplicated', firstUnexplained: { file: guest, line: i + 2 } });
  });

  it('names file and line of the event that breaks a property', async () => {
    const { file, events } = await foreignTrace();
    const i = events.findIndex((e) => e.ev === 'pkt.restore');
    write(file, events.map((e, j) => (j === i ? { ...e, saveDigest: '0123456789abcdef' } : e)));
    const r = await bench(['check', '--properties-only', '--trace', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`${file}:${i + 1}`);
    expect(r.stdout).toMatch(/savebuf-mismatch/);
  });

  it('exits 2 on usage it cannot honour: no --scenario without --properties-only, --choice with it, a trace of another scenario', async () => {
    const { file } = await foreignTrace();
    const noScenario = await bench(['check', '--trace', file]);
    expect(noScenario.exitCode).toBe(2);
    expect(noScenario.stderr).toContain('--scenario');
    const choice = await bench(['check', '--properties-only', '--trace', file, '--choice', 'sendOrdering=ring-first']);
    expect(choice.exitCode).toBe(2);
    expect(choice.stderr).toContain('--choice');
    const other = await bench(['check', '--properties-only', '--scenario', 'bench/scenarios/07-pause-resume.yaml', '--trace', file]);
    expect(other.exitCode).toBe(2);
    expect(other.stderr).toContain(`${file}:1`);
  });
});
