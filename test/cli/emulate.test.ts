// The real `bench` command on the scenario suite and on bad input.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IncomingRing, RingMemory } from '../../src/vmbus/ring.ts';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });

describe('bench emulate', () => {
  it('runs the suite: one trace per scenario, a summary, exit 0', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-'));
    const r = await bench(['emulate', 'bench/scenarios', '--out', out, '--json']);
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.failed).toBe(0);
    expect(doc.passed).toBeGreaterThanOrEqual(8);
    for (const s of doc.scenarios) {
      const lines = readFileSync(join(out, `${s.name}.jsonl`), 'utf8').trim().split('\n');
      expect(lines.length).toBe(s.events);
      expect(JSON.parse(lines[0]!)).toMatchObject({ v: 1, seq: 1, ev: 'scenario.begin', name: s.name });
    }
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).scenarios.length).toBe(doc.scenarios.length);
    expect(readdirSync(out).some((f) => f.endsWith('.partial'))).toBe(false);
  });

  it('writes the same trace twice for the same seed', async () => {
    const a = mkdtempSync(join(tmpdir(), 'emu-'));
    const b = mkdtempSync(join(tmpdir(), 'emu-'));
    await bench(['emulate', 'bench/scenarios/04-repeated-save-restore.yaml', '--seed', '9', '--out', a]);
    await bench(['emulate', 'bench/scenarios/04-repeated-save-restore.yaml', '--seed', '9', '--out', b]);
    const name = 'repeated-save-restore.jsonl';
    expect(readFileSync(join(a, name), 'utf8')).toBe(readFileSync(join(b, name), 'utf8'));
  });

  it('dumps each ring as control page plus data pages at every save and at the end', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-'));
    const rings = join(out, 'rings');
    const r = await bench(['emulate', 'bench/scenarios/03-ring-full-library-queue.yaml', '--out', out, '--dump-rings', rings]);
    expect(r.exitCode).toBe(0);
    const dir = join(rings, 'ring-full-library-queue');
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['001-save-ch0-g2h.ring', '001-save-ch0-h2g.ring', '002-end-ch0-g2h.ring', '002-end-ch0-h2g.ring']);
    // 1 control page + 1 data page; the writer's feature bit at 0x40.
    const h2g = readFileSync(join(dir, '001-save-ch0-h2g.ring'));
    expect(statSync(join(dir, '001-save-ch0-h2g.ring')).size).toBe(8192);
    expect(h2g.readUInt32LE(0x40)).toBe(1);
    const write = h2g.readUInt32LE(0);
    expect(write % 8).toBe(0);
    // Every packet between the read and write index parses as the ring format says.
    const buf = new ArrayBuffer(h2g.length);
    new Uint8Array(buf).set(h2g);
    const inc = new IncomingRing(new RingMemory(buf, 0, 1));
    let n = 0;
    for (let v = inc.peek(); v !== null; v = inc.peek()) {
      expect([6, 0xb]).toContain(v.type);
      inc.advance(v);
      n++;
    }
    expect(n).toBe(Math.round(n));
  });

  it('exits 2 naming file, line and field for a bad scenario, and writes nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emu-'));
    const r = await bench(['emulate', 'test/fixtures/scenarios/bad-unknown-field.yaml', '--out', join(out, 'x')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('bad-unknown-field.yaml:4');
    expect(r.stderr).toContain('steps[1]');
    expect(existsSync(join(out, 'x'))).toBe(false);
  });

  it('exits 2 for a missing file and for a bad --seed', async () => {
    expect((await bench(['emulate', 'no/such.yaml'])).exitCode).toBe(2);
    expect((await bench(['emulate', 'bench/scenarios', '--seed', 'abc'])).exitCode).toBe(2);
  });

  it('--choice sets a documented-gap choice over the scenario\'s, and an unknown key or option exits 2 naming it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-choice-'));
    const file = 'bench/scenarios/06-checkpoint-apply.yaml';
    const restores = (dir: string) => readFileSync(join(dir, 'checkpoint-apply.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"pkt.restore"')).length;
    expect((await bench(['emulate', file, '--out', join(out, 'default')])).exitCode).toBe(0);
    expect((await bench(['emulate', file, '--out', join(out, 'pulse'), '--choice', 'runningCheckpoint=pulse'])).exitCode).toBe(0);
    // Under pulse the taken checkpoint is restored at once too, as well as when it is applied.
    expect(restores(join(out, 'pulse'))).toBe(2 * restores(join(out, 'default')));
    const badOption = await bench(['emulate', file, '--out', join(out, 'x'), '--choice', 'runningCheckpoint=sometimes']);
    expect(badOption.exitCode).toBe(2);
    expect(badOption.stderr).toContain('runningCheckpoint is one of save-and-continue, pulse');
    const badKey = await bench(['explore', file, '--choice', 'noSuchChoice=1']);
    expect(badKey.exitCode).toBe(2);
    expect(badKey.stderr).toContain('--choice noSuchChoice=1');
    expect(existsSync(join(out, 'x'))).toBe(false);
  });
});

describe('bench explore', () => {
  it('runs every save point with each VM operation and reports the count', async () => {
    const r = await bench(['explore', 'bench/scenarios/02-inflight-host-transactions.yaml', '--json']);
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout);
    // four operations: save-restore, migrate, checkpoint, checkpoint-apply
    expect(doc.schedules).toBe(doc.savePoints * 4 - doc.skipped);
    expect(doc.failures).toEqual([]);
  });

  it('--plain runs every schedule from the start and reaches the same result, across worker threads too', async () => {
    const file = 'bench/scenarios/10-quota-and-deferral.yaml';
    const walked = JSON.parse((await bench(['explore', file, '--json', '--workers', '2'])).stdout);
    const plain = JSON.parse((await bench(['explore', file, '--json', '--workers', '2', '--plain'])).stdout);
    expect(plain.ranInFull).toBe(plain.schedules);
    expect(walked.ranInFull).toBeLessThan(walked.schedules);
    for (const k of ['schedules', 'skipped', 'failures', 'savePoints', 'truncated']) expect(walked[k]).toEqual(plain[k]);
  });
});

describe('bench check', () => {
  it('passes a trace the emulator wrote and exits 0', async () => {
    const out = mkdtempSync(join(tmpdir(), 'chk-'));
    await bench(['emulate', 'bench/scenarios/05-migrate-and-back.yaml', '--seed', '4', '--out', out]);
    const r = await bench(['check', '--scenario', 'bench/scenarios/05-migrate-and-back.yaml', '--trace', join(out, 'migrate-and-back.jsonl'), '--json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).result.verdict).toBe('pass');
  });

  it('exits 1 with the divergence, and writes a minimal scenario beside the trace', async () => {
    const out = mkdtempSync(join(tmpdir(), 'chk-'));
    await bench(['emulate', 'bench/scenarios/05-migrate-and-back.yaml', '--out', out]);
    const file = join(out, 'migrate-and-back.jsonl');
    // Break the trace: the guest's first completion carries another status.
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const i = lines.findIndex((e) => e.ev === 'pkt.completion' && e.side === 'guest');
    lines[i].status = 'c0000001';
    writeFileSync(file, `${lines.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const r = await bench(['check', '--scenario', 'bench/scenarios/05-migrate-and-back.yaml', '--trace', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('DIVERGE  migrate-and-back: status');
    expect(r.stdout).toContain(`${file}:${i + 1}`);
    expect(r.stdout).toMatch(/minimal scenario \(fault wrong-status/);
    expect(existsSync(join(out, 'migrate-and-back-minimal.yaml'))).toBe(true);
    const again = await bench(['emulate', join(out, 'migrate-and-back-minimal.yaml'), '--out', join(out, 'again')]);
    expect(again.exitCode).toBe(0); // without the fault, the minimal scenario is clean
  });

  it('exits 2 naming file, line and field for a malformed trace', async () => {
    const out = mkdtempSync(join(tmpdir(), 'chk-'));
    const file = join(out, 't.jsonl');
    writeFileSync(file, '{"v":1,"seq":1,"src":"x","side":"bench","ev":"scenario.begin","name":"idle-save-restore","seed":1}\n{"v":1,"seq":2,"src":"x","side":"host","ev":"pkt.recv","ch":0}\n');
    const r = await bench(['check', '--scenario', 'bench/scenarios/01-idle-save-restore.yaml', '--trace', file]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${file}:2`);
    expect(r.stderr).toContain('tx');
  });

  it('exits 2 when the trace is of another scenario', async () => {
    const out = mkdtempSync(join(tmpdir(), 'chk-'));
    await bench(['emulate', 'bench/scenarios/01-idle-save-restore.yaml', '--out', out]);
    const r = await bench(['check', '--scenario', 'bench/scenarios/07-pause-resume.yaml', '--trace', join(out, 'idle-save-restore.jsonl')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('not "pause-resume"');
  });
});

describe('bench check on a run split into host and guest files', () => {
  it('merges the files on their bench events and passes; a broken guest file diverges with its own file:line', async () => {
    const out = mkdtempSync(join(tmpdir(), 'chk-split-'));
    await bench(['emulate', 'bench/scenarios/06-checkpoint-apply.yaml', '--seed', '2', '--out', out]);
    const events = readFileSync(join(out, 'checkpoint-apply.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // Each side's file holds its own events and a copy of every bench event, with its own seq.
    const split = (side: string) =>
      events.filter((e) => e.side === side || e.side === 'bench').map((e, i) => JSON.stringify({ ...e, seq: i + 1, src: `hyperv-${side}` }));
    const host = join(out, 'host.jsonl');
    const guest = join(out, 'guest.jsonl');
    writeFileSync(host, `${split('host').join('\n')}\n`);
    writeFileSync(guest, `${split('guest').join('\n')}\n`);
    const ok = await bench(['check', '--scenario', 'bench/scenarios/06-checkpoint-apply.yaml', '--trace', host, '--trace', guest, '--json']);
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout).result.verdict).toBe('pass');

    const lines = split('guest').map((l) => JSON.parse(l));
    const i = lines.findIndex((e) => e.ev === 'pkt.recv');
    lines[i].digest = '0123456789abcdef';
    writeFileSync(guest, `${lines.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const bad = await bench(['check', '--scenario', 'bench/scenarios/06-checkpoint-apply.yaml', '--trace', host, '--trace', guest, '--no-minimise', '--json']);
    expect(bad.exitCode).toBe(1);
    const doc = JSON.parse(bad.stdout);
    expect(doc.result.class).toBe('payload');
    expect(doc.result.firstUnexplained).toMatchObject({ file: guest, line: i + 1 });
  });
});

describe('bench emulate --migrate-threads', () => {
  it('writes the same traces as a single-thread run', async () => {
    const a = mkdtempSync(join(tmpdir(), 'emu-mt-'));
    const b = mkdtempSync(join(tmpdir(), 'emu-mt-'));
    expect((await bench(['emulate', 'bench/scenarios/05-migrate-and-back.yaml', 'bench/scenarios/09-many-channels.yaml', '--out', a])).exitCode).toBe(0);
    expect((await bench(['emulate', 'bench/scenarios/05-migrate-and-back.yaml', 'bench/scenarios/09-many-channels.yaml', '--out', b, '--migrate-threads'])).exitCode).toBe(0);
    for (const f of ['migrate-and-back.jsonl', 'many-channels.jsonl']) {
      expect(readFileSync(join(b, f), 'utf8')).toBe(readFileSync(join(a, f), 'utf8'));
    }
  });
});
