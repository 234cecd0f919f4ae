// The runtime validator for one parsed trace line (TRACE-SCHEMA.md).
//
// `bench check` reads traces of tens of millions of events, so this is hand-written and
// allocation-free on the happy path rather than a zod schema per line: one table says
// which fields each event requires and of what kind, and `checkEvent` walks it. The
// published JSON Schema (trace-v1.schema.json) says the same thing for other tools;
// test/trace/json-schema.test.ts keeps the two in step.
//
// Unknown fields are accepted: the schema lets later versions add fields to version 1.
import { EVENT_SIDES, TRACE_VERSION, type EventName, type Side, type TraceEvent } from './schema.ts';
import { isTxId } from '../vmbus/tx-id.ts';

/** What a field must hold. */
export type FieldKind =
  | 'version' // the number 1
  | 'uint' // a non-negative safe integer
  | 'int' // a safe integer
  | 'name' // a non-empty string
  | 'bool'
  | 'side' // host | guest | bench
  | 'ev' // a known event name
  | 'dir' // g2h | h2g
  | 'id' // channel id: uint (a source trace may also use a string, see below)
  | 'tx' // transaction id: a u64, exact (vmbus/tx-id.ts): a safe integer as a number, from 2^53 on a bigint as read
  //        from the JSON integer without loss (json-ids.ts); a source trace may also use a string
  | 'status' // NTSTATUS, 8 hex digits
  | 'digest'; // FNV-1a 64, 16 lowercase hex digits

export type FieldTable = readonly (readonly [field: string, kind: FieldKind])[];

/** Fields every line carries, checked first and in this order (an unknown `v` wins). */
export const COMMON_FIELDS: FieldTable = [
  ['v', 'version'],
  ['seq', 'uint'],
  ['src', 'name'],
  ['side', 'side'],
  ['ev', 'ev'],
];

const CHANNEL: FieldTable = [['ch', 'id']];
const PACKET: FieldTable = [
  ['ch', 'id'],
  ['tx', 'tx'],
  ['dir', 'dir'],
];

/** The one table of required fields per event, beyond COMMON_FIELDS. */
export const EVENT_FIELDS: Readonly<Record<EventName, FieldTable>> = {
  'scenario.begin': [
    ['name', 'name'],
    ['seed', 'int'],
  ],
  'scenario.end': [
    ['name', 'name'],
    ['seed', 'int'],
  ],
  'vm.save.begin': [],
  'vm.save.end': [],
  'vm.restore.begin': [],
  'vm.restore.end': [],
  'vm.pause': [],
  'vm.resume': [],
  'vm.migrate.begin': [
    ['from', 'name'],
    ['to', 'name'],
  ],
  'vm.migrate.end': [
    ['from', 'name'],
    ['to', 'name'],
  ],
  'vm.checkpoint.begin': [['name', 'name']],
  'vm.checkpoint.end': [['name', 'name']],
  'vm.checkpoint.apply.begin': [['name', 'name']],
  'vm.checkpoint.apply.end': [['name', 'name']],
  'bench.mark': [],
  'ch.state': [...CHANNEL, ['state', 'name']],
  'pkt.send': [...PACKET, ['len', 'uint'], ['digest', 'digest'], ['wantCompletion', 'bool']],
  'pkt.queued': [...PACKET],
  'pkt.recv': [...PACKET, ['len', 'uint'], ['digest', 'digest']],
  'pkt.complete': [...PACKET, ['status', 'status'], ['len', 'uint'], ['digest', 'digest']],
  'pkt.completion': [...PACKET, ['status', 'status'], ['digest', 'digest']],
  'pkt.save': [...PACKET, ['libLen', 'uint'], ['saveLen', 'uint'], ['saveDigest', 'digest']],
  'pkt.restore': [...PACKET, ['saveDigest', 'digest']],
  'pkt.fail': [...PACKET, ['status', 'status']],
  'ring.format': [...CHANNEL, ['dir', 'dir'], ['offset', 'uint'], ['type', 'uint'], ['flags', 'uint']],
  'kmcl.violation': [...CHANNEL, ['rule', 'name'], ['call', 'name'], ['packet', 'uint'], ['message', 'name']],
  'ch.rescind': [...CHANNEL],
  'ch.offer': [...CHANNEL],
  'pkt.cancel': [...PACKET, ['status', 'status']],
  'pkt.timeout': [...PACKET, ['len', 'uint'], ['digest', 'digest']],
};

export interface CheckOptions {
  /**
   * Accept ids as a source writes them before normalisation: `ch` and `tx` may also be
   * non-empty strings (a channel's instance GUID, a hex transaction id), and hex digits
   * in `digest` may be upper case. normalise.ts maps these onto the schema's numbers.
   */
  sourceIds?: boolean;
}

/** Why a line is not a valid event. `field` is absent when the line is not an object. */
export interface FieldProblem {
  field?: string;
  message: string;
}

const STATUS_RE = /^[0-9a-fA-F]{8}$/;
const DIGEST_RE = /^[0-9a-f]{16}$/;
const DIGEST_ANY_CASE_RE = /^[0-9a-fA-F]{16}$/;

// The fast path: one boolean predicate per event, generated from the same table as the
// slow path. Generated rather than a loop over the table because constant property names
// let V8 cache each lookup, which makes validation ~3x cheaper (about 0.1 us per event)
// and keeps JSON.parse, not validation, the cost of reading a trace. It only answers yes
// or no; on no, `explainEvent` walks the table to name the field.
const FAST: ReadonlyMap<unknown, (o: object) => boolean> = compileFastChecks(false);
const FAST_SOURCE: ReadonlyMap<unknown, (o: object) => boolean> = compileFastChecks(true);

function compileFastChecks(sourceIds: boolean): Map<unknown, (o: object) => boolean> {
  const out = new Map<unknown, (o: object) => boolean>();
  for (const ev of Object.keys(EVENT_FIELDS) as EventName[]) {
    const sides = EVENT_SIDES[ev].map((side) => `o.side === ${JSON.stringify(side)}`).join(' || ');
    const fields = [...COMMON_FIELDS, ...EVENT_FIELDS[ev]].filter(([, kind]) => kind !== 'side' && kind !== 'ev');
    const body = [`(${sides})`, ...fields.map(([field, kind]) => fastCondition(`o[${JSON.stringify(field)}]`, kind, sourceIds))];
    if (isBenchEvent(ev)) body.push('(o.at === undefined || MARKS_OK(o.at))');
    // The source is built only from the constant tables above, never from input.
    const make = new Function('STATUS_RE', 'DIGEST_RE', 'MARKS_OK', `return function (o) { return ${body.join(' && ')}; };`);
    out.set(ev, make(STATUS_RE, sourceIds ? DIGEST_ANY_CASE_RE : DIGEST_RE, (at: unknown) => checkMarks(at) === undefined) as (o: object) => boolean);
  }
  return out;
}

function fastCondition(x: string, kind: FieldKind, sourceIds: boolean): string {
  switch (kind) {
    case 'version':
      return `${x} === ${TRACE_VERSION}`;
    case 'id':
      if (sourceIds) return `((Number.isSafeInteger(${x}) && ${x} >= 0) || (typeof ${x} === 'string' && ${x}.length > 0))`;
      return `(Number.isSafeInteger(${x}) && ${x} >= 0)`;
    case 'tx': {
      const big = `(typeof ${x} === 'bigint' && ${x} >= 9007199254740992n && ${x} <= 18446744073709551615n)`;
      if (sourceIds) return `((Number.isSafeInteger(${x}) && ${x} >= 0) || ${big} || (typeof ${x} === 'string' && ${x}.length > 0))`;
      return `((Number.isSafeInteger(${x}) && ${x} >= 0) || ${big})`;
    }
    case 'uint':
      return `(Number.isSafeInteger(${x}) && ${x} >= 0)`;
    case 'int':
      return `Number.isSafeInteger(${x})`;
    case 'name':
      return `(typeof ${x} === 'string' && ${x}.length > 0)`;
    case 'bool':
      return `typeof ${x} === 'boolean'`;
    case 'side':
    case 'ev':
      return 'true'; // checked by the lookup and the sides clause
    case 'dir':
      return `(${x} === 'g2h' || ${x} === 'h2g')`;
    case 'status':
      return `(typeof ${x} === 'string' && STATUS_RE.test(${x}))`;
    case 'digest':
      return `(typeof ${x} === 'string' && DIGEST_RE.test(${x}))`;
  }
}

/**
 * Checks one parsed line. Returns undefined when it is a valid event of schema v1 (so the
 * caller may treat it as a TraceEvent), else the first problem found.
 */
export function checkEvent(value: unknown, options: CheckOptions = {}): FieldProblem | undefined {
  if (typeof value === 'object' && value !== null) {
    const fast = (options.sourceIds === true ? FAST_SOURCE : FAST).get((value as { ev?: unknown }).ev);
    if (fast !== undefined && fast(value)) return undefined;
  }
  return explainEvent(value, options);
}

/** Narrowing form of checkEvent, for callers that only need yes or no. */
export function isTraceEvent(value: unknown): value is TraceEvent {
  return checkEvent(value) === undefined;
}

/** The slow path: walks the table and says what is wrong (exported so tests can hold the fast path to it). */
export function explainEvent(value: unknown, options: CheckOptions = {}): FieldProblem | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { message: `a trace line must be a JSON object, got ${describe(value)}` };
  }
  const o = value as Record<string, unknown>;
  const sourceIds = options.sourceIds === true;
  const common = checkFields(o, COMMON_FIELDS, sourceIds);
  if (common !== undefined) return common;
  const ev = o.ev as EventName;
  const side = o.side as Side;
  if (!EVENT_SIDES[ev].includes(side)) {
    return { field: 'side', message: `${ev} is written by ${EVENT_SIDES[ev].join(' or ')}, not ${side}` };
  }
  return checkFields(o, EVENT_FIELDS[ev], sourceIds) ?? (side === 'bench' && o.at !== undefined ? checkMarks(o.at) : undefined);
}

/** Events only the bench writes (the ones that may carry `at`). */
function isBenchEvent(ev: EventName): boolean {
  return EVENT_SIDES[ev].length === 1 && EVENT_SIDES[ev][0] === 'bench';
}

/**
 * A bench event's optional `at` (TRACE-SCHEMA.md, "Merging"): an object from a file's mark
 * key to the last seq that file had written, each a non-negative integer like a seq.
 * Checked on reading, so a malformed mark is named by its line and field wherever the
 * file is used; that a file's marks do not go back is the merge's to check (normalise.ts),
 * as it needs the bench event before.
 */
export function checkMarks(at: unknown): FieldProblem | undefined {
  if (typeof at !== 'object' || at === null || Array.isArray(at)) return { field: 'at', message: `must be an object from a file's mark key to its last seq, got ${describe(at)}` };
  for (const key in at) {
    const seq = (at as Record<string, unknown>)[key];
    if (!fits(seq, 'uint', false)) return { field: `at.${key}`, message: `a mark is the last seq a file had written: ${expected('uint', false)}, got ${describe(seq)}` };
  }
  return undefined;
}

function checkFields(o: Record<string, unknown>, table: FieldTable, sourceIds: boolean): FieldProblem | undefined {
  for (let i = 0; i < table.length; i++) {
    const [field, kind] = table[i]!;
    const x = o[field];
    if (x === undefined) return { field, message: 'missing field' };
    if (!fits(x, kind, sourceIds)) return { field, message: `${expected(kind, sourceIds)}, got ${describe(x)}` };
  }
  return undefined;
}

function fits(x: unknown, kind: FieldKind, sourceIds: boolean): boolean {
  switch (kind) {
    case 'version':
      return x === TRACE_VERSION;
    case 'uint':
      return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
    case 'int':
      return typeof x === 'number' && Number.isSafeInteger(x);
    case 'name':
      return typeof x === 'string' && x.length > 0;
    case 'bool':
      return typeof x === 'boolean';
    case 'side':
      return x === 'host' || x === 'guest' || x === 'bench';
    case 'ev':
      return typeof x === 'string' && Object.hasOwn(EVENT_FIELDS, x);
    case 'dir':
      return x === 'g2h' || x === 'h2g';
    case 'id':
      if (typeof x === 'number') return Number.isSafeInteger(x) && x >= 0;
      return sourceIds && typeof x === 'string' && x.length > 0;
    case 'tx':
      if (typeof x === 'number') return Number.isSafeInteger(x) && x >= 0;
      if (typeof x === 'bigint') return isTxId(x);
      return sourceIds && typeof x === 'string' && x.length > 0;
    case 'status':
      return typeof x === 'string' && STATUS_RE.test(x);
    case 'digest':
      return typeof x === 'string' && (sourceIds ? DIGEST_ANY_CASE_RE : DIGEST_RE).test(x);
  }
}

function expected(kind: FieldKind, sourceIds: boolean): string {
  switch (kind) {
    case 'version':
      return `unknown trace version (this bench reads version ${TRACE_VERSION})`;
    case 'uint':
      return 'must be a non-negative integer';
    case 'int':
      return 'must be an integer';
    case 'name':
      return 'must be a non-empty string';
    case 'bool':
      return 'must be true or false';
    case 'side':
      return 'must be "host", "guest" or "bench"';
    case 'ev':
      return 'unknown event name';
    case 'dir':
      return 'must be "g2h" or "h2g"';
    case 'id':
      return sourceIds ? 'must be a non-negative integer or a non-empty string' : 'must be a non-negative integer';
    case 'tx':
      return sourceIds ? 'must be a non-negative integer below 2^64 or a non-empty string' : 'must be a non-negative integer below 2^64';
    case 'status':
      return 'must be an NTSTATUS as 8 hex digits, e.g. "c0000184"';
    case 'digest':
      return 'must be a digest of 16 lowercase hex digits';
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return 'an object';
  const s = typeof x === 'bigint' ? String(x) : (JSON.stringify(x) ?? String(x));
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
