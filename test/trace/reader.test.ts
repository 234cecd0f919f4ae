import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { openSourceTrace, openTrace, readTraceFile, TruncatedTraceError } from '../../src/trace/reader.ts';
import { formatEvent } from '../../src/trace/sink.ts';
import { anyTrace, sampleOf } from './arbitraries.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/trace');
const MALFORMED = join(FIXTURES, 'malformed');

interface Expected {
  line: number;
  field: string | null;
  jsonSchema: boolean;
  message: string;
}
const expected = JSON.parse(await readFile(join(MALFORMED, 'expected.json'), 'utf8')) as Record<string, Expected>;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trace-reader-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readError(file: string, options = {}): Promise<InputError> {
  try {
    await readTraceFile(file, options);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error(`${file} was read without error`);
}

describe('reading malformed traces', () => {
  it('has an expectation for every malformed fixture', async () => {
    const files = (await readdir(MALFORMED)).filter((f) => f.endsWith('.jsonl'));
    expect(files.sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected))('%s is an InputError (exit 2) naming file, line and field', async (name, want) => {
    const file = join(MALFORMED, name);
    for (const chunkBytes of [undefined, 16]) {
      const e = await readError(file, chunkBytes === undefined ? {} : { chunkBytes });
      expect(e).not.toBeInstanceOf(TruncatedTraceError);
      expect(e.exitCode).toBe(2);
      expect(e.location).toMatchObject({ file, line: want.line });
      expect(e.location.field).toBe(want.field ?? undefined);
      expect(e.message).toContain(`${file}:${want.line}`);
      expect(e.message).toContain(want.message);
    }
  });
});

describe('a truncated last line', () => {
  const file = join(FIXTURES, 'truncated-last-line.jsonl');

  it('yields every complete event, then throws TruncatedTraceError naming the line', async () => {
    const seen: number[] = [];
    const reader = openTrace(file);
    const err = await (async () => {
      try {
        for await (const { event } of reader) seen.push(event.seq);
      } catch (e) {
        return e;
      }
    })();
    expect(seen).toEqual([1, 2, 3]);
    expect(err).toBeInstanceOf(TruncatedTraceError);
    expect((err as TruncatedTraceError).exitCode).toBe(2);
    expect((err as TruncatedTraceError).location).toMatchObject({ file, line: 4 });
    expect((err as TruncatedTraceError).message).toMatch(/truncated last line/);
    expect(reader.end).toEqual({ kind: 'truncated', events: 3, line: 4, bytes: 25 });
  });

  it('is accepted on request, and the reader still says it was truncated', async () => {
    const { events, end } = await readTraceFile(file, { acceptTruncated: true });
    expect(events.map((e) => e.line)).toEqual([1, 2, 3]);
    expect(end).toMatchObject({ kind: 'truncated', line: 4 });
  });

  it('is what a writer cut off at any byte leaves behind', async () => {
    const lines = [1, 2, 3].map((seq) => formatEvent(sampleOf('pkt.recv', seq)));
    const whole = lines.map((l) => `${l}\n`).join('');
    const f = join(dir, 'cut.jsonl');
    await writeFile(f, whole);
    for (let size = 0; size <= whole.length; size++) {
      await writeFile(f, whole);
      await truncate(f, size);
      const { events, end } = await readTraceFile(f, { acceptTruncated: true });
      const complete = whole.slice(0, size).split('\n').length - 1;
      // A cut just before a newline leaves a line that still parses: it is complete.
      const parses = size > 0 && whole[size - 1] === '}';
      expect(events.length).toBe(complete + (parses ? 1 : 0));
      expect(end.kind).toBe(size === 0 || whole[size - 1] === '\n' || parses ? 'complete' : 'truncated');
    }
  });

  it('a malformed line that ends with its newline is an error, not a truncation', async () => {
    const f = join(dir, 'bad-last.jsonl');
    await writeFile(f, `${formatEvent(sampleOf('pkt.recv'))}\n{"v":1,\n`);
    const e = await readError(f, { acceptTruncated: true });
    expect(e).not.toBeInstanceOf(TruncatedTraceError);
    expect(e.location.line).toBe(2);
  });
});

describe('reading valid traces', () => {
  it('skips a byte order mark and accepts CRLF line ends (files written on Windows)', async () => {
    const { events, end } = await readTraceFile(join(FIXTURES, 'windows-bom-crlf.jsonl'));
    expect(events.map((e) => [e.line, e.event.seq])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(end).toEqual({ kind: 'complete', events: 3, lines: 3 });
  });

  it('accepts a last line without its newline when it parses', async () => {
    const { events, end } = await readTraceFile(join(FIXTURES, 'no-final-newline.jsonl'));
    expect(events).toHaveLength(3);
    expect(end).toEqual({ kind: 'complete', events: 3, lines: 3 });
  });

  it('reads an empty file as an empty, complete trace', async () => {
    const f = join(dir, 'empty.jsonl');
    await writeFile(f, '');
    expect(await readTraceFile(f)).toEqual({ events: [], end: { kind: 'complete', events: 0, lines: 0 } });
  });

  it('a missing file or a directory is an InputError naming it', async () => {
    expect((await readError(join(dir, 'nope.jsonl'))).location.file).toBe(join(dir, 'nope.jsonl'));
    const e = await readError(dir);
    expect(e.location.file).toBe(dir);
    expect(e.message).toMatch(/directory/);
  });

  it('yields the same events and line numbers whatever the chunk size (lines and UTF-8 cut anywhere)', async () => {
    const f = join(dir, 'chunks.jsonl');
    await fc.assert(
      fc.asyncProperty(anyTrace, fc.integer({ min: 1, max: 300 }), async (events, chunkBytes) => {
        await writeFile(f, events.map((e) => `${formatEvent(e)}\n`).join(''));
        const got = await readTraceFile(f, { chunkBytes });
        expect(got.events.map((e) => e.event)).toEqual(events);
        expect(got.events.map((e) => e.line)).toEqual(events.map((_, i) => i + 1));
        expect(got.end).toEqual({ kind: 'complete', events: events.length, lines: events.length });
      }),
      { numRuns: 150 },
    );
  });

  it('batches hold consecutive lines, across reads and parse runs alike', async () => {
    const f = join(dir, 'batches.jsonl');
    // ~1.3 MB: several 256 KiB reads, each parsed in several runs; one long line too.
    const events = Array.from({ length: 10_000 }, (_, i) =>
      i === 4321 ? { ...sampleOf('scenario.begin', i + 1), name: 'x'.repeat(200_000) } : sampleOf('pkt.recv', i + 1),
    );
    await writeFile(f, events.map((e) => `${formatEvent(e)}\n`).join(''));
    for (const chunkBytes of [undefined, 1000]) {
      let next = 1;
      for await (const batch of openTrace(f, chunkBytes === undefined ? {} : { chunkBytes }).batches()) {
        expect(batch.firstLine).toBe(next);
        expect(batch.events.map((e) => e.seq)).toEqual(batch.events.map((_, i) => next + i));
        next += batch.events.length;
      }
      expect(next).toBe(10_001);
    }
  });

  it('a reader can be read only once', async () => {
    const reader = openTrace(join(FIXTURES, 'no-final-newline.jsonl'));
    for await (const _ of reader) void _;
    await expect(async () => {
      for await (const _ of reader) void _;
    }).rejects.toThrow(/only be read once/);
  });

  it('a source trace may carry string ids, which a plain read refuses', async () => {
    const file = join(FIXTURES, 'merge/guest-with-bench-events.jsonl');
    const e = await readError(file);
    expect(e.location).toMatchObject({ line: 2, field: 'ch' });
    const source = openSourceTrace(file);
    let n = 0;
    for await (const _ of source) n++;
    expect(n).toBe(11);
  });
});
