// The counters IOCTL's text as the bench reads it (windows-driver.ts parseCounters): one
// row per line that is not blank, each `key=value` one entry. The scan must read any
// text as the plain split-based reading does, which states the format most directly.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCounters } from '../../../src/devices/wasm/windows-driver.ts';

/** The reading parseCounters replaced: lines, white space, then '='. */
function bySplitting(text: string): Array<Record<string, number>> {
  return text.split('\n').filter((l) => l.trim()).map((l) => Object.fromEntries(l.trim().split(/\s+/).map((kv) => {
    const [k, v] = kv.split('=');
    return [k!, Number(v)];
  })));
}

const same = (text: string): void => {
  const got = parseCounters(text);
  const want = bySplitting(text);
  expect(got.map((r) => Object.entries(r))).toEqual(want.map((r) => Object.entries(r)));
};

describe('parseCounters', () => {
  it('reads the VSP\'s counters lines: the trace seq row, then one row per channel', () => {
    const rows = parseCounters('trace_seq=41\nch=0 held=2 in_flight=3 save_blob_bytes=160 next_tx=9\nch=1 held=0 in_flight=0 save_blob_bytes=0 next_tx=1\n');
    expect(rows).toEqual([{ trace_seq: 41 }, { ch: 0, held: 2, in_flight: 3, save_blob_bytes: 160, next_tx: 9 }, { ch: 1, held: 0, in_flight: 0, save_blob_bytes: 0, next_tx: 1 }]);
  });

  it('reads any text as splitting it on lines, white space and \'=\' does', () => {
    // Tokens from the characters that matter (separators, '=', digits, a few letters,
    // Unicode spaces), and keys that are special on an object.
    const piece = fc.oneof(
      fc.constantFrom('\n', ' ', '\t', '\r', '=', '\u00a0', '\u2028', '\u3000', '\ufeff', '__proto__', 'constructor', 'ch', 'x', '0x1f', '-', '.', 'e3'),
      fc.bigInt({ min: 0n, max: 2n ** 64n }).map(String),
    );
    fc.assert(fc.property(fc.array(piece, { maxLength: 40 }).map((a) => a.join('')), same), { numRuns: 400 });
    fc.assert(fc.property(fc.string({ maxLength: 60 }), same), { numRuns: 200 });
  });

  it('keeps a key named __proto__ as the row\'s own entry, not its prototype', () => {
    const [row] = parseCounters('__proto__=5 a=1');
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.entries(row!)).toEqual([['__proto__', 5], ['a', 1]]);
  });
});
