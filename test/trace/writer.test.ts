import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../src/errors.ts';
import { readTraceFile } from '../../src/trace/reader.ts';
import { formatEvent, StampingSink } from '../../src/trace/sink.ts';
import { TraceWriter, writeTraceFile } from '../../src/trace/writer.ts';
import { anyTrace, sampleOf } from './arbitraries.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trace-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TraceWriter', () => {
  it('round-trips random valid events through writer and reader unchanged', async () => {
    const f = join(dir, 'roundtrip.jsonl');
    await fc.assert(
      fc.asyncProperty(anyTrace, fc.integer({ min: 1, max: 2000 }), async (events, bufferChars) => {
        writeTraceFile(f, events, { bufferChars });
        const { events: read, end } = await readTraceFile(f);
        expect(read.map((e) => e.event)).toEqual(events);
        expect(end).toEqual({ kind: 'complete', events: events.length, lines: events.length });
      }),
      { numRuns: 200 },
    );
  });

  it('writes formatEvent(e) and a newline per event, nothing else', async () => {
    const f = join(dir, 'exact.jsonl');
    const events = [sampleOf('scenario.begin', 1), sampleOf('pkt.send', 2), sampleOf('pkt.completion', 5)];
    writeTraceFile(f, events);
    expect(await readFile(f, 'utf8')).toBe(events.map((e) => `${formatEvent(e)}\n`).join(''));
  });

  it('is the consumer of a StampingSink, so the emulator can write traces to files', async () => {
    const f = join(dir, 'sink.jsonl');
    const writer = TraceWriter.create(f);
    const sink = new StampingSink('emulator', writer.write);
    sink.emit({ side: 'bench', ev: 'scenario.begin', name: 'one', seed: 3 });
    sink.emit({ side: 'guest', ev: 'pkt.send', ch: 1, tx: 1, dir: 'g2h', len: 24, digest: '0011223344556677', wantCompletion: false });
    writer.close();
    const { events } = await readTraceFile(f);
    expect(events.map((e) => [e.event.seq, e.event.src, e.event.ev])).toEqual([
      [1, 'emulator', 'scenario.begin'],
      [2, 'emulator', 'pkt.send'],
    ]);
  });

  it('keeps at most its buffer in memory: lines reach the file before close', async () => {
    const f = join(dir, 'buffered.jsonl');
    const writer = TraceWriter.create(f, { bufferChars: 1000 });
    const sink = new StampingSink('emulator', writer.write);
    for (let i = 0; i < 100; i++) sink.emit({ side: 'host', ev: 'pkt.queued', ch: 1, tx: i, dir: 'h2g' });
    const size = (await stat(f)).size;
    const total = writer.eventsWritten * formatEvent(sampleOf('pkt.queued')).length;
    expect(size).toBeGreaterThan(total / 2);
    // Whatever is on disk before close is whole lines.
    expect((await readFile(f, 'utf8')).endsWith('\n')).toBe(true);
    writer.flush();
    expect((await readTraceFile(f)).events).toHaveLength(100);
    writer.close();
  });

  it('a writer process killed mid-run leaves a readable trace: every complete event, in order', async () => {
    const f = join(dir, 'killed.jsonl');
    const writerUrl = pathToFileURL(join(import.meta.dirname, '../../src/trace/writer.ts')).href;
    const sinkUrl = pathToFileURL(join(import.meta.dirname, '../../src/trace/sink.ts')).href;
    const script = `
      import { TraceWriter } from ${JSON.stringify(writerUrl)};
      import { StampingSink } from ${JSON.stringify(sinkUrl)};
      const writer = TraceWriter.create(${JSON.stringify(f)}, { bufferChars: 777 });
      const sink = new StampingSink('emulator', writer.write);
      for (let tx = 1; ; tx++) {
        sink.emit({ side: 'guest', ev: 'pkt.send', ch: 1, tx, dir: 'g2h', len: 24, digest: '0011223344556677', wantCompletion: true });
        if (tx === 2000) console.log('going');
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const { events, end } = await readTraceFile(f, { acceptTruncated: true });
    expect(events.length).toBeGreaterThan(1000);
    expect(events.map((e) => e.event.seq)).toEqual(events.map((_, i) => i + 1));
    expect(['complete', 'truncated']).toContain(end.kind);
  });

  it('refuses an event whose seq does not increase (a broken sink is a bug, not input)', () => {
    const writer = TraceWriter.create(join(dir, 'seq.jsonl'));
    writer.write(sampleOf('pkt.recv', 5));
    expect(() => writer.write(sampleOf('pkt.recv', 5))).toThrow(/does not increase/);
    writer.close();
  });

  it('close is idempotent and a closed writer refuses events', () => {
    const writer = TraceWriter.create(join(dir, 'closed.jsonl'));
    writer.close();
    writer.close();
    expect(writer.closed).toBe(true);
    expect(() => writer.write(sampleOf('pkt.recv', 1))).toThrow(/closed/);
  });

  it('replaces an existing file by default and refuses to in exclusive mode', async () => {
    const f = join(dir, 'exists.jsonl');
    await writeFile(f, 'old\n');
    writeTraceFile(f, [sampleOf('vm.pause', 1)]);
    expect((await readTraceFile(f)).events).toHaveLength(1);
    expect(() => TraceWriter.create(f, { ifExists: 'exclusive' })).toThrow(InfraError);
  });

  it('a file it cannot create is an InfraError (exit 3) naming it', () => {
    const f = join(dir, 'no-such-dir', 't.jsonl');
    expect(() => TraceWriter.create(f)).toThrow(expect.objectContaining({ exitCode: 3, message: expect.stringContaining(f) }));
  });
});
