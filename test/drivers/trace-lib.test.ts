// The trace library for drivers (lab/drivers/trace-lib/vmbus_bench_trace.h): a trace a
// driver writes through it is one the bench reads. A small program built with gcc from
// the header writes every event kind the header knows into a struct vbt_buffer, as a
// driver does; each line must satisfy the published JSON Schema (ajv) and the bench's own
// validator, and a buffer that fills up keeps whole lines only and counts the rest.
// The drivers that use the header are built by linux-module.test.ts (Kbuild),
// windows-typecheck.test.ts (clang against the WDK stand-in) and the wasm tests.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parseJsonExact } from '../../src/trace/json-ids.ts';
import { EVENT_SIDES, type EventName } from '../../src/trace/schema.ts';
import { checkEvent } from '../../src/trace/validate.ts';
import { REPO, gccProgram, gccSkipNote, haveGcc } from './support/gcc-program.ts';

// -Wpedantic too: the header is meant to compile in any C world without noise.
const writer = { sources: ['test/drivers/trace-lib-writer.c'], include: ['lab/drivers/trace-lib'], warnings: ['-Wpedantic'] };
const program = gccProgram('trace-lib-writer', writer);
// The same events through vbt_tracelogging_write, into a recorder standing in for TraceLoggingProvider.h.
const tlProgram = gccProgram('trace-lib-tracelogging', {
  ...writer, include: [...writer.include, 'test/drivers/support/tracelogging-recorder'], define: ['WRITE_TRACELOGGING'],
});

function write(capacity: number, clearAfter?: number, bin = program.path): { lines: string[]; seq: number; dropped: number; readAtEnd: number } {
  const r = spawnSync(bin, [String(capacity), ...(clearAfter ? [String(clearAfter)] : [])], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const m = /seq=(\d+) dropped=(\d+) readAtEnd=(\d+)/.exec(r.stderr);
  expect(m, r.stderr).not.toBeNull();
  const lines = r.stdout.split('\n');
  expect(lines.pop()).toBe(''); // the buffer ends with a whole line
  return { lines, seq: Number(m![1]), dropped: Number(m![2]), readAtEnd: Number(m![3]) };
}

const schema = JSON.parse(readFileSync(join(REPO, 'src/trace/trace-v1.schema.json'), 'utf8')) as object;
const validateSchema = new Ajv2020({ allErrors: true, strict: false }).compile(schema);

describe.skipIf(!haveGcc)(`a trace written through vmbus_bench_trace.h${gccSkipNote}`, () => {
  it('validates against the JSON Schema and the bench\'s validator, every host/guest event included', () => {
    const { lines, seq, dropped, readAtEnd } = write(1 << 20);
    expect({ seq, dropped, readAtEnd }).toEqual({ seq: lines.length, dropped: 0, readAtEnd: 0 });
    const events = lines.map((l) => parseJsonExact(l) as Record<string, unknown>);
    for (const [i, e] of events.entries()) {
      expect(validateSchema(JSON.parse(lines[i]!)), `${lines[i]}: ${JSON.stringify(validateSchema.errors)}`).toBe(true);
      expect(checkEvent(e), lines[i]).toBeUndefined();
      expect(e).toMatchObject({ v: 1, seq: i + 1, src: 'hyperv', side: 'host', ch: 7 });
    }
    // Every event a driver may write (side host or guest) came out of the header.
    const driverEvents = (Object.keys(EVENT_SIDES) as EventName[]).filter((ev) => EVENT_SIDES[ev].includes('host'));
    expect(new Set(events.map((e) => e.ev))).toEqual(new Set(driverEvents));
    // Values at their limits and strings that need escaping survive exactly.
    const send = events.find((e) => e.ev === 'pkt.send')!;
    expect(send).toMatchObject({ tx: 18446744073709551615n, dir: 'h2g', len: 4096, digest: 'ffffffffffffffff', wantCompletion: true });
    expect(events.find((e) => e.ev === 'pkt.queued')).toMatchObject({ inferred: true });
    expect(events.find((e) => e.ev === 'pkt.fail')).toMatchObject({ status: 'c0000184' });
    expect(events.find((e) => e.ev === 'kmcl.violation')).toEqual({
      v: 1, seq: 17, src: 'hyperv', side: 'host', ev: 'kmcl.violation', ch: 7,
      rule: 'free-twice', call: 'VmbPacketFree', packet: 42, message: 'packet "42" freed twice\n\tsecond call\\here',
    });
    expect(events.find((e) => e.ev === 'ring.format')).toMatchObject({ dir: 'g2h', offset: 4088, type: 3, flags: 2 });
    expect(events.find((e) => e.ev === 'pkt.cancel')).toEqual({ v: 1, seq: 13, src: 'hyperv', side: 'host', ev: 'pkt.cancel', ch: 7, tx: 3, dir: 'h2g', status: 'c0000184' });
    expect(events.filter((e) => e.ev === 'ch.rescind' || e.ev === 'ch.offer').map((e) => Object.keys(e))).toEqual([
      ['v', 'seq', 'src', 'side', 'ev', 'ch'], ['v', 'seq', 'src', 'side', 'ev', 'ch']]);
  });

  it('a full buffer keeps a prefix of whole lines, counts every line after it as dropped, and numbers without gaps', () => {
    const full = write(1 << 20).lines;
    const fits = full.slice(0, 5).join('\n').length + 1; // exactly the first five lines and their newlines
    // The sixth line (pkt.complete) is long and the eighth (pkt.queued) short: whatever
    // room is left after the first drop, nothing later is written behind the gap.
    for (const [capacity, kept] of [[fits, 4], [fits + 1, 5], [fits + 60, 5]] as const) {
      const { lines, seq, dropped } = write(capacity);
      expect(lines).toEqual(full.slice(0, kept));
      expect(seq).toBe(kept);
      expect(dropped).toBe(full.length - kept);
    }
    expect(write(0)).toMatchObject({ lines: [], seq: 0, dropped: full.length });
  });

  it('a clear empties the buffer but seq keeps counting', () => {
    const { lines, seq } = write(1 << 20, 4);
    expect(seq).toBe(18);
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
  });
});

describe.skipIf(!haveGcc)(`TraceLogging and JSON Lines, the library's two emitters, write the same fields${gccSkipNote}`, () => {
  it('each event through vbt_tracelogging_write has the JSON line\'s name, fields, order and values, less what the converter adds (v, src, side)', () => {
    const json = write(1 << 20).lines;
    const tl = write(1 << 20, undefined, tlProgram.path).lines;
    expect(tl).toHaveLength(json.length);
    for (const [i, line] of json.entries()) {
      const { v: _v, src: _src, side: _side, ...fields } = parseJsonExact(line) as Record<string, unknown>;
      // Same keys in the same order, same values (the event name first, as ETW's event name).
      expect(Object.entries(parseJsonExact(tl[i]!) as object), line).toEqual(Object.entries({ ev: fields.ev, ...fields }));
    }
  });
});
