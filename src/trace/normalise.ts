// Normalisation: makes traces from different sources comparable (TRACE-SCHEMA.md).
//
// A real run leaves several files: the host's, the guest's, perhaps the bench's own. The
// checker wants one stream in the schema's terms, so this module
//   1. maps each source's ids onto the schema's numbers (a driver may write a channel's
//      instance GUID, or a transaction id as hex), per the source's IdRules;
//   2. merges the files on the bench's events (scenario and VM operations), so that each
//      side's events fall between the right bench events, each file keeping its order;
//   3. keeps, for every event, the file:line it came from, for error messages.
//
// Merging is streaming, one segment (the events between two bench events) at a time, so
// memory grows with the longest segment, not with the trace (except the `intern` id
// tables, one entry per distinct id). normaliseInRuns hands out whole segments. Alignment comes either from
// copies (a source that holds the bench events itself: the emulator's single file, or
// side files the bench wrote its markers into) or from marks: a bench event may carry
// `at: { <markKey>: seq }`, the last seq that source had written when it happened, and a
// source with `align: { markKey }` has no bench events and is cut at those seqs.
//
// Within a segment, events of different files are interleaved so that causes come first
// (a send before its receive, a complete before its completion) where the files allow;
// otherwise in source order. Files carry no common clock, so this is one plausible
// order, not the observed one: the checker decides which orders the model allows.
import { U64_MAX, toTxId, type TxId } from '../vmbus/tx-id.ts';
import { InputError } from '../errors.ts';
import type { LocatedEvent, SourceEvent } from './reader.ts';
import { openSourceTrace, TraceReader, type ReadOptions } from './reader.ts';
import type { Dir, EventName, TraceEvent } from './schema.ts';
import { EVENT_FIELDS } from './validate.ts';

export interface LineRef {
  file: string;
  line: number;
}

export function formatRef(ref: LineRef): string {
  return `${ref.file}:${ref.line}`;
}

/** An event in the schema's terms and where it came from (a bench event merged from copies has one ref per copy). */
export interface NormalisedEvent {
  event: TraceEvent;
  refs: readonly LineRef[];
}

/**
 * How a source's ids become numbers.
 * - `number` (default): ids are already non-negative integers; a string is an error.
 * - `auto`: integers as they are, `"0x1f"` as hex, `"31"` as decimal.
 * - `intern`: any string or number, numbered 1, 2, 3... in order of first appearance,
 *   shared by all sources of one merge (so a channel GUID both sides write maps alike);
 *   transaction ids are numbered per channel and direction. Costs a table entry per id.
 * - `guid`: a channel instance GUID becomes its last 8 hex digits, read as a number:
 *   the drivers' own channel numbering (lab/drivers/common/sample-protocol.h).
 * - `{ map }`: an explicit table from the written id to the number.
 */
export type IdRule = 'number' | 'auto' | 'intern' | 'guid' | { readonly map: Readonly<Record<string, number>> };

export interface IdRules {
  ch?: IdRule;
  tx?: IdRule;
}

export interface TraceSource {
  /** Named in error messages and refs. */
  file: string;
  events: AsyncIterable<LocatedEvent<SourceEvent>> | Iterable<LocatedEvent<SourceEvent>>;
  ids?: IdRules;
  /** `copies` (default): holds the bench events. `{ markKey }`: cut at the bench events' `at[markKey]`. */
  align?: 'copies' | { markKey: string };
}

/**
 * A source read from a file with openSourceTrace. Keep `reader` to learn afterwards
 * whether the file was truncated (with `acceptTruncated`).
 */
export function fileSource(
  file: string,
  options: ReadOptions & Pick<TraceSource, 'ids' | 'align'> = {},
): { source: TraceSource; reader: TraceReader<SourceEvent> } {
  const reader = openSourceTrace(file, options);
  const source: TraceSource = { file, events: reader };
  if (options.ids !== undefined) source.ids = options.ids;
  if (options.align !== undefined) source.align = options.align;
  return { source, reader };
}

/** Merges and normalises sources into one stream (see the file header). */
export async function* normaliseTraces(sources: readonly TraceSource[]): AsyncGenerator<NormalisedEvent> {
  for await (const run of normaliseInRuns(sources)) yield* run;
}

/**
 * The same stream in runs (a segment, then its closing bench event): one promise per
 * run instead of one per event, for consumers of long traces.
 */
export async function* normaliseInRuns(sources: readonly TraceSource[]): AsyncGenerator<NormalisedEvent[]> {
  const ids = new IdMapper();
  const cursors = sources.map((s) => new Cursor(s, ids));
  const copies = cursors.filter((c) => c.markKey === undefined);
  const marked = cursors.filter((c) => c.markKey !== undefined);
  let open = copies;
  for (let round = 0; ; round++) {
    const segments = await Promise.all(open.map((c) => c.untilBenchEvent()));
    const ends = segments.flatMap((s) => (s.boundary ? [s.boundary] : []));
    const boundary = ends[0];
    if (boundary !== undefined) checkAgreement(ends);
    if (round === 0 && boundary !== undefined) {
      const lost = open.find((c, i) => segments[i]!.boundary === undefined && segments[i]!.events.length > 0);
      if (lost !== undefined) {
        throw new InputError('this trace has no bench events, so its events cannot be placed between the bench\'s', {
          file: lost.file,
        }, { hint: 'write the bench events into it, or give it align: { markKey } and put at-marks on the bench events' });
      }
    }
    const markedSegments = await Promise.all(marked.map((c) => c.untilMark(boundary)));
    const run = interleave([...segments.map((s) => s.events), ...markedSegments]);
    if (boundary !== undefined) run.push({ event: boundary.event, refs: ends.map((e) => e.refs[0]!) });
    if (run.length > 0) yield run;
    if (boundary === undefined) return;
    // A source that ended early (a crashed side) leaves the rest to the others.
    open = open.filter((_, i) => segments[i]!.boundary !== undefined);
  }
}

/** Collects a normalised stream (small traces, tests). */
export async function normaliseToArray(sources: readonly TraceSource[]): Promise<NormalisedEvent[]> {
  const out: NormalisedEvent[] = [];
  for await (const e of normaliseTraces(sources)) out.push(e);
  return out;
}

/** The copies of one bench event in several files must say the same. */
function checkAgreement(copies: readonly NormalisedEvent[]): void {
  const first = copies[0]!;
  for (const other of copies.slice(1)) {
    const a = first.event as unknown as Record<string, unknown>;
    const b = other.event as unknown as Record<string, unknown>;
    const differs = a.ev !== b.ev ? 'ev' : EVENT_FIELDS[a.ev as EventName].find(([f]) => a[f] !== b[f])?.[0];
    if (differs !== undefined) {
      const ref = other.refs[0]!;
      throw new InputError(
        `bench events disagree: ${JSON.stringify(b[differs])} here, ${JSON.stringify(a[differs])} at ${formatRef(first.refs[0]!)}`,
        { file: ref.file, line: ref.line, field: differs },
        { hint: 'the files must come from the same run and hold the same bench events in the same order' },
      );
    }
  }
}

interface Segment {
  events: NormalisedEvent[];
  boundary: NormalisedEvent | undefined;
}

const END = Symbol('end of source');

/** Reads one source a segment at a time. */
class Cursor {
  readonly file: string;
  readonly markKey: string | undefined;
  private readonly pull: () => Promise<LocatedEvent<SourceEvent>[] | undefined>;
  private readonly rules: IdRules;
  private readonly ids: IdMapper;
  private buffered: LocatedEvent<SourceEvent>[] = [];
  private at = 0;
  private ahead: NormalisedEvent | undefined;
  private ended = false;
  /** the previous bench event's mark for this source, and where it was (marks never go back) */
  private lastMark: { seq: number; ref: LineRef } | undefined;

  constructor(source: TraceSource, ids: IdMapper) {
    this.file = source.file;
    this.markKey = typeof source.align === 'object' ? source.align.markKey : undefined;
    this.pull = puller(source.events);
    this.rules = source.ids ?? {};
    this.ids = ids;
  }

  /**
   * The next event: undefined when the buffer is empty (then `refill`), or `END`.
   * Synchronous, so that a segment costs a promise per batch, not per event.
   */
  private take(): NormalisedEvent | undefined | typeof END {
    if (this.ahead !== undefined) {
      const e = this.ahead;
      this.ahead = undefined;
      return e;
    }
    if (this.ended) return END;
    if (this.at >= this.buffered.length) return undefined;
    const located = this.buffered[this.at++]!;
    const ref = { file: located.file, line: located.line };
    return { event: this.ids.normalise(located.event, this.rules, ref), refs: [ref] };
  }

  private async refill(): Promise<void> {
    const more = await this.pull();
    if (more === undefined) this.ended = true;
    else {
      this.buffered = more;
      this.at = 0;
    }
  }

  /** Events up to the next bench event, and that event (undefined at the end). */
  async untilBenchEvent(): Promise<Segment> {
    const events: NormalisedEvent[] = [];
    for (;;) {
      const e = this.take();
      if (e === END) return { events, boundary: undefined };
      if (e === undefined) await this.refill();
      else if (e.event.side === 'bench') return { events, boundary: e };
      else events.push(e);
    }
  }

  /** Events with seq up to the boundary's mark for this source (all that is left at the end). */
  async untilMark(boundary: NormalisedEvent | undefined): Promise<NormalisedEvent[]> {
    let last = Infinity;
    if (boundary !== undefined) {
      const at = (boundary.event as { at?: unknown }).at;
      const mark = typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[this.markKey!] : undefined;
      const ref = boundary.refs[0]!;
      if (typeof mark !== 'number' || !Number.isSafeInteger(mark) || mark < 0) {
        throw new InputError(`bench event has no at.${this.markKey} mark to place ${this.file}'s events by`, {
          file: ref.file,
          line: ref.line,
          field: `at.${this.markKey}`,
        });
      }
      // A file's seq only grows, so its marks do too: one that goes back would cut the
      // file before events already placed, and put none of them after this bench event.
      if (this.lastMark !== undefined && mark < this.lastMark.seq) {
        throw new InputError(`at.${this.markKey} ${mark} goes back from ${this.lastMark.seq} at ${formatRef(this.lastMark.ref)}: ${this.file}'s marks must not decrease`, {
          file: ref.file,
          line: ref.line,
          field: `at.${this.markKey}`,
        }, { hint: 'a mark is the last seq the file had written when the bench event happened' });
      }
      this.lastMark = { seq: mark, ref };
      last = mark;
    }
    const events: NormalisedEvent[] = [];
    for (;;) {
      const e = this.take();
      if (e === END) break;
      if (e === undefined) {
        await this.refill();
        continue;
      }
      if (e.event.side === 'bench') {
        throw new InputError('a source aligned by marks must not hold bench events', {
          file: e.refs[0]!.file,
          line: e.refs[0]!.line,
          field: 'side',
        });
      }
      if (e.event.seq > last) {
        this.ahead = e;
        break;
      }
      events.push(e);
    }
    return events;
  }
}

/**
 * Events in runs: a TraceReader's batches as they come (one promise per batch, not per
 * event), any other source one event at a time.
 */
function puller(events: TraceSource['events']): () => Promise<LocatedEvent<SourceEvent>[] | undefined> {
  if (events instanceof TraceReader) {
    const reader = events as TraceReader<SourceEvent>;
    const batches = reader.batches();
    return async () => {
      const r = await batches.next();
      if (r.done === true) return undefined;
      const { events: batch, firstLine } = r.value;
      return batch.map((event, i) => ({ event, file: reader.file, line: firstLine + i }));
    };
  }
  const it = Symbol.asyncIterator in events ? events[Symbol.asyncIterator]() : events[Symbol.iterator]();
  return async () => {
    const r = await it.next();
    return r.done === true ? undefined : [r.value];
  };
}

/** Maps source ids onto the schema's numbers; one per merge, so interned ids are shared. */
class IdMapper {
  private readonly channels = new Map<string, number>();
  private readonly transactions = new Map<string, Map<string, number>>();

  normalise(e: SourceEvent, rules: IdRules, ref: LineRef): TraceEvent {
    const raw = e as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = { ...raw };
    if (raw.ch !== undefined) out.ch = this.map('ch', raw.ch, rules.ch, this.channels, ref);
    if (raw.tx !== undefined) {
      const key = `${out.ch as number}:${raw.dir as Dir}`;
      let table = this.transactions.get(key);
      if (table === undefined) this.transactions.set(key, (table = new Map()));
      out.tx = this.map('tx', raw.tx, rules.tx, table, ref);
    }
    // Hex is compared as text downstream: one case for all sources.
    for (const [field, kind] of EVENT_FIELDS[e.ev]) {
      const v = raw[field];
      if ((kind === 'digest' || kind === 'status') && typeof v === 'string') out[field] = v.toLowerCase();
    }
    return out as unknown as TraceEvent;
  }

  private map(field: 'ch' | 'tx', raw: unknown, rule: IdRule = 'number', interned: Map<string, number>, ref: LineRef): TxId {
    const fail = (why: string, hint: string): never => {
      throw new InputError(`${field} ${typeof raw === 'bigint' ? String(raw) : JSON.stringify(raw)}: ${why}`, { file: ref.file, line: ref.line, field }, { hint });
    };
    if (rule === 'intern') {
      const key = String(raw);
      let n = interned.get(key);
      if (n === undefined) interned.set(key, (n = interned.size + 1));
      return n;
    }
    if (typeof rule === 'object') {
      const n = Object.hasOwn(rule.map, String(raw)) ? rule.map[String(raw)] : undefined;
      return n ?? fail('not in this source\'s id map', 'add it to the map');
    }
    if (typeof raw === 'number') return raw;
    // A tx is a u64 (vmbus/tx-id.ts): the reader gives one from 2^53 on as a bigint, exact.
    if (typeof raw === 'bigint' && field === 'tx') return raw;
    if (rule === 'guid') {
      const m = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}([0-9a-fA-F]{8})$/.exec(String(raw));
      return m ? Number.parseInt(m[1]!, 16) : fail('is not a GUID', "use the 'intern' rule");
    }
    if (rule === 'number') return fail('is not a number', "give this source the ids rule 'auto' or 'intern'");
    const s = String(raw);
    if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(s)) return fail('is neither hex (0x...) nor decimal', "use the 'intern' rule");
    const big = BigInt(s);
    if (field === 'tx' && big <= U64_MAX) return toTxId(big);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) return fail(field === 'tx' ? 'is larger than 2^64 - 1' : 'is larger than 2^53 - 1', "use the 'intern' rule");
    return Number(big);
  }
}

/** Orders one segment's lists so that causes come first where the files allow (see header). */
function interleave(lists: NormalisedEvent[][]): NormalisedEvent[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length <= 1) return nonEmpty[0] ?? []; // a cursor's own fresh array
  const key = (e: TraceEvent): string => `${(e as { ch: number }).ch}:${(e as { dir: Dir }).dir}:${(e as { tx: number }).tx}`;
  // Per key: causes not yet emitted, and emitted causes minus emitted effects.
  const pending = new Map<string, number>();
  const credit = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, d: number): void => void m.set(k, (m.get(k) ?? 0) + d);
  const cause = (ev: string): string | undefined =>
    ev === 'pkt.send' ? 'send' : ev === 'pkt.complete' || ev === 'pkt.fail' ? 'done' : undefined;
  const effect = (ev: string): string | undefined =>
    ev === 'pkt.recv' || ev === 'pkt.fail' ? 'send' : ev === 'pkt.completion' ? 'done' : undefined;
  // A channel's rescind (host) comes before the cancels (either side) it causes.
  const causeKey = (e: TraceEvent): string | undefined => {
    if (e.ev === 'ch.rescind') return `rescind@${e.ch}`;
    const c = cause(e.ev);
    return c === undefined ? undefined : `${c}@${key(e)}`;
  };
  const effectKey = (e: TraceEvent): string | undefined => {
    if (e.ev === 'pkt.cancel') return `rescind@${e.ch}`;
    const c = effect(e.ev);
    return c === undefined ? undefined : `${c}@${key(e)}`;
  };
  for (const l of nonEmpty) for (const { event } of l) {
    const k = causeKey(event);
    if (k !== undefined) add(pending, k, 1);
  }
  const waits = (e: TraceEvent): boolean => {
    const k = effectKey(e);
    if (k === undefined) return false;
    return (pending.get(k) ?? 0) > 0 && (credit.get(k) ?? 0) <= 0;
  };
  const at = nonEmpty.map(() => 0);
  const out: NormalisedEvent[] = [];
  const total = nonEmpty.reduce((n, l) => n + l.length, 0);
  while (out.length < total) {
    let pick = nonEmpty.findIndex((l, i) => at[i]! < l.length && !waits(l[at[i]!]!.event));
    // Nothing can go without its cause: only a broken trace does that; keep source order.
    if (pick < 0) pick = nonEmpty.findIndex((l, i) => at[i]! < l.length);
    const e = nonEmpty[pick]![at[pick]!++]!;
    const c = causeKey(e.event);
    const x = effectKey(e.event);
    // (A rescind's cancels are many: its credit is not spent by each.)
    if (x !== undefined && e.event.ev !== 'pkt.cancel') add(credit, x, -1);
    if (c !== undefined) {
      add(pending, c, -1);
      add(credit, c, 1);
    }
    out.push(e);
  }
  return out;
}
