// The reading thread's fast path: turns a run of trace lines straight from their bytes
// into an EventBatch, without JSON.parse and without making an object per line.
//
// It accepts only lines in the exact form every writer of this project produces (the
// emulator's JSON.stringify and lab/drivers/common/sample-protocol.c): the schema's
// fields in the schema's order, no blanks, ASCII strings without escapes, integers
// without exponent or leading zeros. For those, what it decodes equals what JSON.parse
// gives, and it applies the validator's rules itself (event and side, version, uint,
// status and digest digits, non-empty names, seq increasing). Anything else, valid or
// not, makes it give up on the whole run, which then goes through JSON.parse and the
// validator (line-batches.ts): that path, never this one, names a bad line.
//
// Measured: about 4x cheaper per line than JSON.parse + checkEvent + encoding.
import { EVENT_SIDES, type EventName } from './schema.ts';
import { EVENT_FIELDS, type FieldKind } from './validate.ts';
import { EVENT_NAMES, MAX_RECORD_NUMS, type EventBatch } from './event-columns.ts';
import { U64_MAX } from '../vmbus/tx-id.ts';

const FIRST_BIG = 1n << 53n;

const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

// Byte values.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const CLOSE = 0x7d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

type Kind = Exclude<FieldKind, 'version' | 'side' | 'ev'>;

interface EvShape {
  code: number;
  name: Uint8Array;
  /** sides allowed, as the codes event-columns.ts uses (host 0, guest 1, bench 2) */
  sides: readonly number[];
  /** each field's `,"name":` and kind */
  fields: ReadonlyArray<{ key: Uint8Array; kind: Kind }>;
}

const SIDE_NAMES = ['host', 'guest', 'bench'] as const;
const SHAPES: readonly EvShape[] = EVENT_NAMES.map((ev: EventName, code) => ({
  code,
  name: enc(ev),
  sides: EVENT_SIDES[ev].map((s) => SIDE_NAMES.indexOf(s)),
  fields: EVENT_FIELDS[ev].map(([f, kind]) => ({ key: enc(`,"${f}":`), kind: kind as Kind })),
}));
const SIDES = SIDE_NAMES.map(enc);
const HEAD = enc('{"v":1,"seq":');
const SRC = enc(',"src":');
const SIDE = enc(',"side":');
const EV = enc(',"ev":');

/** Decodes runs of lines into batches; one per reading thread (it keeps the last seq). */
export class LineScanner {
  private b: Uint8Array = new Uint8Array(0);
  private p = 0;
  // The batch being built. Strings are copied as bytes and decoded once per batch.
  private nums = new Float64Array(0);
  private at = 0;
  private text = new Uint8Array(0);
  private t = 0;

  /**
   * The lines in bytes [start, end) (each ending in a newline), numbered from
   * `firstLine`, as a batch; undefined when any line is not in the exact form, and then
   * nothing was consumed. `lastSeq` is the seq before the first line; the batch's last
   * seq is returned with it.
   */
  scan(bytes: Uint8Array, start: number, end: number, firstLine: number, lastSeq: number): { batch: EventBatch; lastSeq: number } | undefined {
    this.b = bytes;
    let lines = 0;
    for (let i = bytes.indexOf(0x0a, start); i >= 0 && i < end; i = bytes.indexOf(0x0a, i + 1)) lines++;
    this.nums = new Float64Array(lines * MAX_RECORD_NUMS);
    this.at = 0;
    if (this.text.length < end - start) this.text = new Uint8Array(end - start);
    this.t = 0;
    this.p = start;
    let seq = lastSeq;
    for (let line = firstLine; this.p < end; line++) {
      const s = this.line(line, seq);
      if (s === undefined) return undefined;
      seq = s;
    }
    const text = Buffer.from(this.text.buffer, this.text.byteOffset, this.t).toString('latin1');
    return { batch: { nums: this.nums.subarray(0, this.at), records: lines, text, problems: [], done: false }, lastSeq: seq };
  }

  /** One line at `p`, up to and including its newline; its seq, or undefined. */
  private line(line: number, lastSeq: number): number | undefined {
    const nums = this.nums;
    const rec = this.at;
    if (!this.lit(HEAD)) return undefined;
    const seq = this.uint();
    if (seq === undefined || !(seq > lastSeq)) return undefined;
    if (!this.lit(SRC)) return undefined;
    const srcLen = this.str();
    if (srcLen === undefined || srcLen === 0) return undefined;
    if (!this.lit(SIDE)) return undefined;
    const side = this.oneOf(SIDES);
    if (side < 0 || !this.lit(EV)) return undefined;
    const shape = this.evShape();
    if (shape === undefined || !shape.sides.includes(side)) return undefined;
    nums[rec] = shape.code;
    nums[rec + 1] = line;
    nums[rec + 2] = seq;
    nums[rec + 3] = srcLen;
    nums[rec + 4] = side;
    let at = rec + 5;
    for (const f of shape.fields) {
      if (!this.lit(f.key)) return undefined;
      const v = this.value(f.kind);
      if (v === undefined) return undefined;
      nums[at++] = v;
    }
    const b = this.b;
    if (b[this.p] !== CLOSE || b[this.p + 1] !== 0x0a) return undefined;
    this.p += 2;
    this.at = at;
    return seq;
  }

  /** A field's value as the number that travels (a string's length; its bytes go to text). */
  private value(kind: Kind): number | undefined {
    switch (kind) {
      case 'uint':
      case 'id':
        return this.uint();
      case 'tx':
        return this.uint() ?? this.bigTx();
      case 'int': {
        if (this.b[this.p] !== MINUS) return this.uint();
        this.p++;
        const n = this.uint();
        return n === undefined ? undefined : -n;
      }
      case 'bool':
        if (this.lit(TRUE)) return 1;
        return this.lit(FALSE) ? 0 : undefined;
      case 'dir': {
        const d = this.oneOf(DIRS);
        return d < 0 ? undefined : d;
      }
      case 'name': {
        const n = this.str();
        return n === 0 ? undefined : n;
      }
      case 'status':
        return this.hex(8, true);
      case 'digest':
        return this.hex(16, false);
    }
  }

  private lit(x: Uint8Array): boolean {
    const b = this.b;
    const p = this.p;
    for (let i = 0; i < x.length; i++) if (b[p + i] !== x[i]) return false;
    this.p = p + x.length;
    return true;
  }

  /** A safe non-negative integer as JSON writes it: no sign, exponent or leading zero. */
  private uint(): number | undefined {
    const b = this.b;
    let p = this.p;
    const first = p;
    let n = 0;
    while (b[p]! >= ZERO && b[p]! <= NINE) n = n * 10 + (b[p++]! - ZERO);
    const digits = p - first;
    // Exact while below 2^53 (each step is); a value above it stays above it when rounded.
    // A leading zero or a '.'/'e' next is not this form.
    if (digits === 0 || digits > 16 || n > Number.MAX_SAFE_INTEGER || (digits > 1 && b[first] === ZERO)) return undefined;
    if (b[p] !== COMMA && b[p] !== CLOSE) return undefined;
    this.p = p;
    return n;
  }

  /**
   * A transaction id from 2^53 to 2^64 - 1 (too large for uint), its digits copied to
   * text: minus their count, which event-columns.ts decodes as a bigint (no precision lost).
   */
  private bigTx(): number | undefined {
    const b = this.b;
    let p = this.p;
    const first = p;
    while (b[p]! >= ZERO && b[p]! <= NINE) p++;
    const digits = p - first;
    if (digits < 16 || digits > 20 || b[first] === ZERO || (b[p] !== COMMA && b[p] !== CLOSE)) return undefined;
    const v = BigInt(Buffer.from(b.buffer, b.byteOffset + first, digits).toString('latin1'));
    if (v < FIRST_BIG || v > U64_MAX) return undefined;
    this.copy(first, digits);
    this.p = p;
    return -digits;
  }

  /** A string of printable ASCII without escapes, copied to text; its length. */
  private str(): number | undefined {
    const b = this.b;
    if (b[this.p] !== QUOTE) return undefined;
    let p = this.p + 1;
    const from = p;
    for (;;) {
      const c = b[p]!;
      if (c === QUOTE) break;
      if (c < 0x20 || c > 0x7e || c === BACKSLASH) return undefined;
      p++;
    }
    const n = p - from;
    this.copy(from, n);
    this.p = p + 1;
    return n;
  }

  /** A string of exactly `digits` hex digits (upper case too when `anyCase`), copied to text. */
  private hex(digits: number, anyCase: boolean): number | undefined {
    const b = this.b;
    const p = this.p;
    if (b[p] !== QUOTE || b[p + digits + 1] !== QUOTE) return undefined;
    const ok = anyCase ? HEX_ANY_CASE : HEX_LOWER;
    for (let i = p + 1; i <= p + digits; i++) if (ok[b[i]!] !== 1) return undefined;
    this.copy(p + 1, digits);
    this.p = p + digits + 2;
    return digits;
  }

  /** Copies `n` bytes from `from` to the batch's text (a loop: a subarray per string cost more). */
  private copy(from: number, n: number): void {
    const b = this.b;
    const text = this.text;
    let t = this.t;
    for (let i = from; i < from + n; i++) text[t++] = b[i]!;
    this.t = t;
  }

  /** Which of `options` (each a quoted string here) comes next; -1 for none. */
  private oneOf(options: readonly Uint8Array[]): number {
    const b = this.b;
    if (b[this.p] !== QUOTE) return -1;
    for (let k = 0; k < options.length; k++) {
      const o = options[k]!;
      let i = 0;
      while (i < o.length && b[this.p + 1 + i] === o[i]) i++;
      if (i === o.length && b[this.p + 1 + i] === QUOTE) {
        this.p += o.length + 2;
        return k;
      }
    }
    return -1;
  }

  /** The event name next, found by a hash of its bytes (trying all 23 in turn cost more). */
  private evShape(): EvShape | undefined {
    const b = this.b;
    const p = this.p;
    if (b[p] !== QUOTE) return undefined;
    let h = FNV_OFFSET;
    let q = p + 1;
    for (; q < p + 40 && b[q] !== QUOTE; q++) h = Math.imul(h ^ b[q]!, FNV_PRIME);
    const shape = SHAPE_BY_HASH.get(h >>> 0);
    if (shape === undefined || shape.name.length !== q - p - 1 || !this.lit1(shape.name, p + 1)) return undefined;
    this.p = q + 1;
    return shape;
  }

  private lit1(x: Uint8Array, at: number): boolean {
    for (let i = 0; i < x.length; i++) if (this.b[at + i] !== x[i]) return false;
    return true;
  }
}

const TRUE = enc('true');
const FALSE = enc('false');
const DIRS = [enc('g2h'), enc('h2g')];

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
function fnv(x: Uint8Array): number {
  let h = FNV_OFFSET;
  for (const c of x) h = Math.imul(h ^ c, FNV_PRIME);
  return h >>> 0;
}
const SHAPE_BY_HASH = new Map(SHAPES.map((s) => [fnv(s.name), s]));
if (SHAPE_BY_HASH.size !== SHAPES.length) throw new Error('two event names hash alike: use another hash');

const hexTable = (chars: string): Uint8Array => {
  const t = new Uint8Array(256);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
};
const HEX_LOWER = hexTable('0123456789abcdef');
const HEX_ANY_CASE = hexTable('0123456789abcdefABCDEF');
