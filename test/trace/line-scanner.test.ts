// The scanner reads trace lines without JSON.parse. Whatever it accepts must be exactly
// what JSON.parse and the validator would give; anything else it must leave to them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchReader } from '../../src/trace/event-columns.ts';
import { LineScanner } from '../../src/trace/line-scanner.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { checkEvent } from '../../src/trace/validate.ts';
import { formatEvent } from '../../src/trace/sink.ts';
import { parseJsonExact } from '../../src/trace/json-ids.ts';
import { anyTrace } from './arbitraries.ts';

function scan(lines: string[], lastSeq = -Infinity): TraceEvent[] | undefined {
  const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
  const r = new LineScanner().scan(bytes, 0, bytes.length, 1, lastSeq);
  if (r === undefined) return undefined;
  const reader = new BatchReader(r.batch);
  const out: TraceEvent[] = [];
  while (reader.remaining > 0) out.push(reader.takeEvent());
  return out;
}

const ascii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s) && !s.includes('\\');

describe('LineScanner', () => {
  it('reads what the writers write, field for field and in key order', () => {
    fc.assert(
      fc.property(anyTrace, (events) => {
        // The schema's key order, as the emulator and the C drivers write it.
        // (formatEvent: a tx from 2^53 on is a bigint, written as the integer it is.)
        const lines = events.map(({ v, seq, src, side, ev, ...fields }) => formatEvent({ v, seq, src, side, ev, ...fields } as TraceEvent));
        const got = scan(lines);
        if (lines.every(ascii)) expect(got?.map((e) => formatEvent(e))).toEqual(lines);
        else expect(got).toBeUndefined(); // non-ASCII text is left to JSON.parse
      }),
      { numRuns: 300 },
    );
  });

  it('accepts a changed line only when JSON.parse and the validator accept it, and then reads it alike', () => {
    const base = '{"v":1,"seq":12,"src":"hyperv","side":"guest","ev":"pkt.send","ch":0,"tx":7,"dir":"g2h","len":64,"digest":"fde3505ef689d8c4","wantCompletion":true}';
    const tokens = ['0', '01', '1e3', '1.0', '-1', '-0', '"A"', '"\\u0041"', ' ', '9007199254740993', '9007199254740991', '123456789012345', '18446744073709551615', '18446744073709551616', '1844674407370955161500', 'true', 'null', '"h2g"', '"bench"', '"FDE3505EF689D8C4"', '"pkt.recv"', '}', ',"x":1', '"', ''];
    fc.assert(
      fc.property(fc.nat(base.length), fc.nat(6), fc.constantFrom(...tokens), fc.integer({ min: 0, max: 20 }), (at, cut, token, lastSeq) => {
        const line = base.slice(0, at) + token + base.slice(at + cut);
        const got = scan([line], lastSeq);
        if (got === undefined) return;
        const value = parseJsonExact(line) as TraceEvent;
        expect(checkEvent(value)).toBeUndefined();
        expect(value.seq).toBeGreaterThan(lastSeq);
        expect(formatEvent(got[0]!)).toBe(formatEvent(value));
        expect(got[0]!).toEqual(value);
        expect(Object.is(got[0]!.seq, value.seq)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves another key order, blank lines, CRLF and a seq that does not increase to the slow path', () => {
    const a = '{"v":1,"seq":1,"src":"x","side":"bench","ev":"vm.pause"}';
    const b = '{"v":1,"seq":2,"src":"x","side":"bench","ev":"vm.resume"}';
    expect(scan([a, b])).toHaveLength(2);
    expect(scan(['{"seq":1,"v":1,"src":"x","side":"bench","ev":"vm.pause"}'])).toBeUndefined();
    expect(scan([a, '', b])).toBeUndefined();
    expect(scan([`${a}\r`, b])).toBeUndefined();
    expect(scan([b, a])).toBeUndefined();
    expect(scan([a], 1)).toBeUndefined();
  });
});
