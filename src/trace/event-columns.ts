// Trace events as columns of numbers plus one string: the form in which a reading thread
// hands parsed, validated events to the thread that checks them (read-ahead.ts).
//
// Handing over the parsed objects themselves costs as much as parsing them again
// (structured clone, measured ~1.2 us per event on the receiving side, the same as
// JSON.parse). Numbers in a transferred Float64Array and the strings concatenated into
// one string cost a few tens of nanoseconds per event to turn back into objects.
//
// A batch is a run of records, each `[code, line, ...]` in `nums`:
//   code >= 0   an event of EVENT_NAMES[code] whose fields are exactly the schema's, in
//               the schema's order (what every writer in this project produces): then
//               seq, src, side and the event's fields, each a number (strings: their
//               length in `text`, in the same order)
//   RAW         any other valid line (extra fields, another key order): its text, to be
//               parsed by JSON.parse on arrival, so the event is the file's, field for field
//   PROBLEM     the line is not an event: `problems[i]` says why; nothing follows it
//   TRUNCATED   the last line has no newline and does not parse; nothing follows it
// `done` marks the last batch of the file.
//
// Encoding and decoding are generated from the schema's field table (validate.ts), as
// validate.ts generates its checks: constant property names let V8 cache every access,
// which a loop over the table by field name cannot.
import { COMMON_FIELDS, EVENT_FIELDS, type FieldKind } from './validate.ts';
import type { EventName, TraceEvent } from './schema.ts';
import { parseJsonExact } from './json-ids.ts';

export const RAW = -1;
export const PROBLEM = -2;
export const TRUNCATED = -3;

/** Why a line is not an event, for an InputError on the checking side. */
export interface LineProblem {
  message: string;
  field?: string | undefined;
}

export interface EventBatch {
  nums: Float64Array;
  /** records in `nums` */
  records: number;
  text: string;
  problems: LineProblem[];
  done: boolean;
}

export const EVENT_NAMES = Object.keys(EVENT_FIELDS) as EventName[];
const CODES: ReadonlyMap<string, number> = new Map(EVENT_NAMES.map((ev, code) => [ev, code]));
const SIDES = ['host', 'guest', 'bench'] as const;
const DIRS = ['g2h', 'h2g'] as const;

/** Numbers per record at most: code, line, seq, src, side and the longest field list. */
export const MAX_RECORD_NUMS = 5 + Math.max(...EVENT_NAMES.map((ev) => EVENT_FIELDS[ev].length));

/** Field names in the schema's order: the key order an event must have to travel as numbers. */
const KEYS: ReadonlyMap<string, readonly string[]> = new Map(
  EVENT_NAMES.map((ev) => [ev, [...COMMON_FIELDS.map(([f]) => f), ...EVENT_FIELDS[ev].map(([f]) => f)]]),
);

/** Whether a valid event's keys are the schema's, in order, and nothing else. */
export function hasSchemaShape(o: TraceEvent): boolean {
  const keys = KEYS.get(o.ev)!;
  let i = 0;
  for (const k in o) if (k !== keys[i++]) return false;
  return i === keys.length;
}

/** The fields after the common ones, with how each travels. */
const TAIL = (ev: EventName) => EVENT_FIELDS[ev].map(([field, kind]) => ({ field, how: travel(kind) }));

function travel(kind: FieldKind): 'num' | 'str' | 'bool' | 'dir' | 'tx' {
  switch (kind) {
    case 'tx': // a number, or a bigint as its decimal digits in text and minus their count in nums
      return 'tx';
    case 'uint':
    case 'int':
    case 'id': // numbers only: source ids (strings) are read by the asynchronous reader, not here
      return 'num';
    case 'name':
    case 'status':
    case 'digest':
      return 'str';
    case 'bool':
      return 'bool';
    case 'dir':
      return 'dir';
    case 'version':
    case 'side':
    case 'ev':
      throw new Error(`${kind} is a common field`);
  }
}

type Encoder = (o: TraceEvent, nums: Float64Array, at: number, strings: string[]) => number;
type Decoder = (c: Cursor) => TraceEvent;

/** Where decoding stands in a batch. */
export interface Cursor {
  nums: Float64Array;
  text: string;
  /** next number */
  at: number;
  /** next character of text */
  pos: number;
}

// The generated source is built only from the constant tables above, never from input.
const ENCODERS: readonly Encoder[] = EVENT_NAMES.map((ev, code) => {
  const lines = [`nums[at++] = ${code};`, 'at++;', 'nums[at++] = o.seq;', 'strings.push(o.src); nums[at++] = o.src.length;', 'nums[at++] = SIDE[o.side];'];
  for (const { field, how } of TAIL(ev)) {
    const x = `o[${JSON.stringify(field)}]`;
    if (how === 'num') lines.push(`nums[at++] = ${x};`);
    else if (how === 'tx') lines.push(`if (typeof ${x} === 'number') nums[at++] = ${x}; else { const d = String(${x}); strings.push(d); nums[at++] = -d.length; }`);
    else if (how === 'str') lines.push(`strings.push(${x}); nums[at++] = ${x}.length;`);
    else if (how === 'bool') lines.push(`nums[at++] = ${x} ? 1 : 0;`);
    else lines.push(`nums[at++] = ${x} === 'g2h' ? 0 : 1;`);
  }
  const make = new Function('SIDE', `return function (o, nums, at, strings) { ${lines.join(' ')} return at; };`);
  return make({ host: 0, guest: 1, bench: 2 }) as Encoder;
});

const DECODERS: readonly Decoder[] = EVENT_NAMES.map((ev) => {
  const props = ['v: 1', 'seq: n[at++]', 'src: t.slice(pos, (pos += n[at++]))', 'side: SIDES[n[at++]]', `ev: ${JSON.stringify(ev)}`];
  for (const { field, how } of TAIL(ev)) {
    const k = JSON.stringify(field);
    if (how === 'num') props.push(`${k}: n[at++]`);
    else if (how === 'tx') props.push(`${k}: (x = n[at++]) >= 0 ? x : BigInt(t.slice(pos, (pos -= x)))`);
    else if (how === 'str') props.push(`${k}: t.slice(pos, (pos += n[at++]))`);
    else if (how === 'bool') props.push(`${k}: n[at++] === 1`);
    else props.push(`${k}: DIRS[n[at++]]`);
  }
  // Properties are evaluated in order, so `at` and `pos` advance field by field.
  const body = `const n = c.nums, t = c.text; let at = c.at + 2, pos = c.pos, x = 0; const e = { ${props.join(', ')} }; c.at = at; c.pos = pos; return e;`;
  return new Function('SIDES', 'DIRS', `return function (c) { ${body} };`)(SIDES, DIRS) as Decoder;
});

/** Collects records into one batch. */
export class BatchWriter {
  private nums: Float64Array;
  private at = 0;
  private records = 0;
  private strings: string[] = [];
  private problems: LineProblem[] = [];

  constructor(maxRecords: number) {
    this.nums = new Float64Array(Math.max(1, maxRecords) * MAX_RECORD_NUMS);
  }

  /** A valid event (checkEvent said so) on `line`. */
  event(o: TraceEvent, line: number, text: () => string): void {
    if (hasSchemaShape(o)) {
      const start = this.at;
      this.at = ENCODERS[CODES.get(o.ev)!]!(o, this.nums, this.at, this.strings);
      this.nums[start + 1] = line;
    } else {
      const t = text();
      this.strings.push(t);
      this.nums[this.at++] = RAW;
      this.nums[this.at++] = line;
      this.nums[this.at++] = t.length;
    }
    this.records++;
  }

  problem(line: number, p: LineProblem): void {
    this.nums[this.at++] = PROBLEM;
    this.nums[this.at++] = line;
    this.nums[this.at++] = this.problems.length;
    this.problems.push(p);
    this.records++;
  }

  truncated(line: number): void {
    this.nums[this.at++] = TRUNCATED;
    this.nums[this.at++] = line;
    this.records++;
  }

  get size(): number {
    return this.records;
  }

  finish(done: boolean): EventBatch {
    return { nums: this.nums.subarray(0, this.at), records: this.records, text: this.strings.join(''), problems: this.problems, done };
  }
}

/** Reads a batch's records in order. */
export class BatchReader {
  private readonly c: Cursor;
  private readonly batch: EventBatch;
  private left: number;

  constructor(batch: EventBatch) {
    this.batch = batch;
    this.c = { nums: batch.nums, text: batch.text, at: 0, pos: 0 };
    this.left = batch.records;
  }

  /** Records not yet taken. */
  get remaining(): number {
    return this.left;
  }

  /** The next record's code (an event's is >= 0) and line; then call one of the take methods. */
  peekCode(): number {
    return this.c.nums[this.c.at]!;
  }

  peekLine(): number {
    return this.c.nums[this.c.at + 1]!;
  }

  takeEvent(): TraceEvent {
    this.left--;
    const c = this.c;
    const code = c.nums[c.at]!;
    if (code >= 0) return DECODERS[code]!(c);
    const len = c.nums[c.at + 2]!;
    c.at += 3;
    const text = c.text.slice(c.pos, (c.pos += len));
    return parseJsonExact(text) as TraceEvent;
  }

  takeProblem(): LineProblem {
    this.left--;
    const i = this.c.nums[this.c.at + 2]!;
    this.c.at += 3;
    return this.batch.problems[i]!;
  }

  skip(): void {
    this.left--;
    this.c.at += 2;
  }
}
