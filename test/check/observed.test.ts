// FileSource is how `bench check` reads a trace: whatever thread reads it, the user must
// get the file's events exactly, and a bad line must be named by file and line when the
// check reaches it.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileSource, type ObservedEvent } from '../../src/check/observed.ts';
import { InputError } from '../../src/errors.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { checkEvent } from '../../src/trace/validate.ts';
import { anyTrace } from '../trace/arbitraries.ts';
import { parseJsonExact, stringifyExact } from '../../src/trace/json-ids.ts';

const dir = mkdtempSync(join(tmpdir(), 'observed-'));
let files = 0;
function traceFile(text: string): string {
  const file = join(dir, `t${files++}.jsonl`);
  writeFileSync(file, text);
  return file;
}

const MODES = ['inline', 'thread'] as const;

/** Everything a FileSource yields, then how it ended. */
function readAll(file: string, readAhead: (typeof MODES)[number]): { events: ObservedEvent[]; error: InputError | null; truncatedAt: number | null } {
  const src = new FileSource(file, { readAhead });
  const events: ObservedEvent[] = [];
  try {
    for (let o = src.next(); o !== null; o = src.next()) events.push(o);
    return { events, error: null, truncatedAt: src.truncatedAt };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return { events, error: e, truncatedAt: src.truncatedAt };
  } finally {
    src.close();
  }
}

/**
 * The rules, line by line, as `bench check` applies them: a blank line is "empty line"
 * (test/fixtures/trace/malformed/expected.json), except blanks after the last newline, which
 * are no line; a last line without a newline that is not JSON ends the trace as truncated;
 * otherwise the first line that is not JSON, not a valid event or not increasing in seq
 * is an error naming it.
 */
function expected(file: string, text: string): { events: ObservedEvent[]; message: string | null; truncatedAt: number | null } {
  const lines = text.split('\n');
  const events: ObservedEvent[] = [];
  let lastSeq = -Infinity;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!;
    const line = i + 1;
    if (t.trim() === '') {
      if (i === lines.length - 1) break;
      return { events, message: `${file}:${line}: empty line`, truncatedAt: null };
    }
    let v: unknown;
    try {
      v = parseJsonExact(t);
    } catch {
      if (i === lines.length - 1) return { events, message: null, truncatedAt: line };
      return { events, message: `${file}:${line}: not valid JSON`, truncatedAt: null };
    }
    const p = checkEvent(v);
    if (p) return { events, message: new InputError(p.message, { file, line, field: p.field }).message, truncatedAt: null };
    const e = v as TraceEvent;
    if (!(e.seq > lastSeq)) return { events, message: `${file}:${line} seq: seq ${e.seq} does not increase (previous ${lastSeq})`, truncatedAt: null };
    lastSeq = e.seq;
    events.push({ event: e, file, line });
  }
  return { events, message: null, truncatedAt: null };
}

const line = (e: object): string => stringifyExact(e);
const ev = (seq: number, more: object = {}): object => ({ v: 1, seq, src: 'hyperv', side: 'guest', ev: 'pkt.send', ch: 0, tx: seq, dir: 'g2h', len: 64, digest: 'fde3505ef689d8c4', wantCompletion: true, ...more });

describe.each(MODES)('FileSource (read %s)', (mode) => {
  it('yields every event with its line', () => {
    const file = traceFile(`${line(ev(1))}\n${line(ev(2))}\n`);
    const r = readAll(file, mode);
    expect(r.error).toBeNull();
    expect(r.events.map((o) => [o.line, o.event.seq, o.file])).toEqual([[1, 1, file], [2, 2, file]]);
  });

  it('names a blank line inside a trace as "empty line", as the malformed fixtures say', () => {
    for (const blank of ['', '  ']) {
      const file = traceFile(`${line(ev(1))}\n${blank}\n${line(ev(2))}\n`);
      const r = readAll(file, mode);
      expect(r.events).toHaveLength(1);
      expect(r.error?.message).toBe(`${file}:2: empty line`);
    }
  });

  it('names file and line of a line that is not JSON, after yielding the lines before it', () => {
    const file = traceFile(`${line(ev(1))}\n${line(ev(2))}\n{"v":1,\n${line(ev(4))}\n`);
    const r = readAll(file, mode);
    expect(r.events).toHaveLength(2);
    expect(r.error?.message).toBe(`${file}:3: not valid JSON`);
    expect(r.error?.exitCode).toBe(2);
  });

  it('names the field of an invalid event and a seq that does not increase', () => {
    const bad = traceFile(`${line(ev(1))}\n${line(ev(2, { digest: 'XYZ' }))}\n`);
    expect(readAll(bad, mode).error?.message).toMatch(new RegExp(`^${bad}:2 digest: `));
    const back = traceFile(`${line(ev(5))}\n${line(ev(5))}\n`);
    expect(readAll(back, mode).error?.message).toBe(`${back}:2 seq: seq 5 does not increase (previous 5)`);
  });

  it('ends a trace whose last line was cut short as truncated, keeping the events before it', () => {
    const file = traceFile(`${line(ev(1))}\n${line(ev(2))}\n${line(ev(3)).slice(0, 40)}`);
    const r = readAll(file, mode);
    expect(r.error).toBeNull();
    expect(r.events).toHaveLength(2);
    expect(r.truncatedAt).toBe(3);
  });

  it('accepts a last line without a newline when it is complete', () => {
    const r = readAll(traceFile(`${line(ev(1))}\n${line(ev(2))}`), mode);
    expect(r.events.map((o) => o.line)).toEqual([1, 2]);
    expect(r.truncatedAt).toBeNull();
  });

  it('gives events with extra fields or another key order exactly as the file has them', () => {
    const odd = [{ seq: 2, v: 1, src: 'x', side: 'host', ev: 'pkt.queued', ch: 1, tx: 2, dir: 'h2g' }, { ...ev(3), inferred: true, note: { a: [1] } }];
    const file = traceFile(`${line(ev(1))}\n${odd.map(line).join('\n')}\n`);
    const r = readAll(file, mode);
    expect(r.events.map((o) => line(o.event))).toEqual([line(ev(1)), ...odd.map(line)]);
  });

  it('reads a trace of many batches with multi-byte text across every boundary', () => {
    const events: object[] = [];
    for (let i = 1; i <= 5000; i++) events.push(i % 7 === 0 ? { v: 1, seq: i, src: 'hyperv', side: 'bench', ev: 'vm.checkpoint.begin', name: `prüf-☃-${'é'.repeat(i % 50)}` } : ev(i));
    const text = `${events.map(line).join('\n')}\n`;
    const file = traceFile(text);
    const r = readAll(file, mode);
    expect(r.error).toBeNull();
    expect(r.events).toEqual(expected(file, text).events);
  });

  it('raises a problem far into the file only when the reading gets there', () => {
    const good = Array.from({ length: 3000 }, (_, i) => line(ev(i + 1))).join('\n');
    const file = traceFile(`${good}\nnot json\n`);
    const src = new FileSource(file, { readAhead: mode });
    try {
      for (let i = 0; i < 3000; i++) expect(src.next()?.line).toBe(i + 1);
      expect(() => src.next()).toThrow(`${file}:3001: not valid JSON`);
    } finally {
      src.close();
    }
  });

  it('can be closed before the end (a divergence early in a long trace)', () => {
    const file = traceFile(`${Array.from({ length: 20000 }, (_, i) => line(ev(i + 1))).join('\n')}\n`);
    for (let k = 0; k < 3; k++) {
      const src = new FileSource(file, { readAhead: mode });
      expect(src.next()?.line).toBe(1);
      src.close();
    }
  });

  it('refuses a directory and a missing file with exit code 2', () => {
    const sub = join(dir, `d-${mode}`);
    mkdirSync(sub);
    const r = readAll(sub, mode);
    expect(r.error?.message).toBe(`${sub}: is a directory, not a trace file`);
    expect(r.error?.exitCode).toBe(2);
    expect(() => new FileSource(join(dir, 'missing.jsonl'), { readAhead: mode })).toThrow(InputError);
  });

  it('agrees with the line rules on arbitrary traces with broken lines', () => {
    const broken = fc.constantFrom('', '   ', 'not json', '{"v":1}', '[1,2]', '{"v":1,"seq":', '1,2', '},{');
    fc.assert(
      fc.property(anyTrace, fc.array(fc.tuple(fc.nat(80), broken), { maxLength: 3 }), fc.boolean(), (events, inserts, newlineAtEnd) => {
        const lines = events.map(line);
        for (const [at, t] of inserts) lines.splice(at % (lines.length + 1), 0, t);
        const text = lines.join('\n') + (newlineAtEnd ? '\n' : '');
        const file = traceFile(text);
        const want = expected(file, text);
        const got = readAll(file, mode);
        expect(got.events).toEqual(want.events);
        expect(got.error?.message ?? null).toBe(want.message);
        expect(got.truncatedAt).toBe(want.truncatedAt);
      }),
      { numRuns: mode === 'thread' ? 40 : 200 },
    );
  });
});
