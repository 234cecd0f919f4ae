// Streaming reader for JSON Lines traces (TRACE-SCHEMA.md).
//
// Memory stays constant in the trace length: the file is read in 64 KiB chunks into two
// buffers that take turns (the next read runs while this one is parsed), lines are split
// by hand (readline costs several times more per line), each run of lines is parsed by
// one JSON.parse where that is provably the same as one per line, and every event goes
// through the table-driven checkEvent. Events come out in batches, so that a consumer of
// ten million events does not pay one promise per event.
//
// A malformed line (bad JSON, missing or ill-typed field, unknown version, seq not
// increasing) is an InputError naming file, line and field. A last line without its
// newline that does not parse is what a crashed writer leaves: every complete event is
// still yielded, and then the reading ends as `truncated` (see ReadEnd), which the
// caller accepts or not (`acceptTruncated`).
import { parseJsonExact } from './json-ids.ts';
import { open, type FileHandle } from 'node:fs/promises';
import { InfraError, InputError } from '../errors.ts';
import type { TraceEvent } from './schema.ts';
import { checkEvent, type CheckOptions } from './validate.ts';

/** How a reading ended. */
export type ReadEnd =
  | { kind: 'complete'; events: number; lines: number }
  /** The last line had no newline and was cut short; `line` is its number, `bytes` its length. */
  | { kind: 'truncated'; events: number; line: number; bytes: number };

export interface ReadOptions {
  /** Yield the complete events of a truncated trace and end normally (default: throw TruncatedTraceError at the end). */
  acceptTruncated?: boolean;
  /** Bytes per read (default 256 KiB). */
  chunkBytes?: number;
}

/** Consecutive events: events[i] is on line firstLine + i. */
export interface TraceBatch<E = TraceEvent> {
  events: E[];
  firstLine: number;
}

export interface LocatedEvent<E = TraceEvent> {
  event: E;
  file: string;
  line: number;
}

/** Widens ch and tx to what a source may write before normalisation (a GUID, a hex string). */
type WidenIds<T> = T extends unknown
  ? { [K in keyof T]: K extends 'ch' | 'tx' ? number | string : T[K] }
  : never;
export type SourceEvent = WidenIds<TraceEvent>;

/** The end of a trace whose last line a crashed writer left incomplete. */
export class TruncatedTraceError extends InputError {
  readonly end: Extract<ReadEnd, { kind: 'truncated' }>;
  constructor(file: string, end: Extract<ReadEnd, { kind: 'truncated' }>) {
    super(`truncated last line (${end.bytes} bytes without a newline; ${end.events} complete events before it)`, {
      file,
      line: end.line,
    }, { hint: 'the writer probably crashed; accept truncated traces to use the complete events' });
    this.name = 'TruncatedTraceError';
    this.end = end;
  }
}

// Reads of 256 KiB, parsed in runs of about 64 KiB, both measured. A run's text and its
// joined copy then stay below V8's large-object size and die young: parsing whole 1 MiB
// reads was slower and peaked at over 300 MB RSS on a 10-million-event trace (the strings
// went to large-object space and lived until a full collection), 64 KiB runs under 100
// MB. Reads larger than runs save the per-read cost (about a tenth of the time at 64 KiB).
const DEFAULT_CHUNK = 256 * 1024;
const PARSE_RUN = 64 * 1024;
/** A longer line is refused rather than grown into (a trace line is a few hundred bytes). */
const MAX_LINE_BYTES = 64 << 20;
const NEWLINE = 0x0a;

/**
 * One pass over one trace file. Iterate `batches()` (fast) or the reader itself (one
 * event at a time, with its line: a promise per event, measured at about half the rate,
 * so bulk consumers like `bench check` should take batches). Afterwards `end` says
 * whether the trace was complete.
 */
export class TraceReader<E = TraceEvent> implements AsyncIterable<LocatedEvent<E>> {
  readonly file: string;
  private readonly options: ReadOptions;
  private readonly check: CheckOptions; // one object, not one per line
  private ended: ReadEnd | undefined;
  private started = false;

  constructor(file: string, options: ReadOptions = {}, sourceIds = false) {
    this.file = file;
    this.options = options;
    this.check = { sourceIds };
  }

  /** How the reading ended; undefined until the last batch has been taken. */
  get end(): ReadEnd | undefined {
    return this.ended;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LocatedEvent<E>> {
    for await (const batch of this.batches()) {
      for (let i = 0; i < batch.events.length; i++) {
        yield { event: batch.events[i]!, file: this.file, line: batch.firstLine + i };
      }
    }
  }

  async *batches(): AsyncGenerator<TraceBatch<E>> {
    if (this.started) throw new Error(`TraceReader for ${this.file} can only be read once`);
    this.started = true;
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch (cause) {
      throw new InputError(`cannot open trace: ${(cause as Error).message}`, { file: this.file }, { cause });
    }
    try {
      yield* this.readAll(handle);
    } finally {
      await handle.close();
    }
  }

  private async *readAll(handle: FileHandle): AsyncGenerator<TraceBatch<E>> {
    let line = 1; // number of the next line to parse
    let events = 0;
    let lastSeq = -1;
    const chunks = wholeLines(handle, this.options.chunkBytes ?? DEFAULT_CHUNK);
    for (;;) {
      let next: IteratorResult<Chunk>;
      try {
        next = await chunks.next();
      } catch (e) {
        if (e instanceof LineTooLong) throw new InputError(e.message, { file: this.file, line });
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EISDIR') throw new InputError('is a directory, not a trace file', { file: this.file }, { cause: e });
        throw new InfraError(`cannot read trace ${this.file}: ${(e as Error).message}`, { cause: e });
      }
      if (next.done === true) break;
      const chunk = next.value;
      if (chunk.tail) {
        // The last line has no newline. If it parses it is complete (a file edited by
        // hand); if not, a writer died in the middle of it.
        let value: unknown;
        try {
          value = parseJsonExact(chunk.bytes.toString('utf8', chunk.start, chunk.end));
        } catch {
          const end = { kind: 'truncated' as const, events, line, bytes: chunk.end - chunk.start };
          this.ended = end;
          if (this.options.acceptTruncated !== true) throw new TruncatedTraceError(this.file, end);
          return;
        }
        lastSeq = this.accept(value, line, lastSeq);
        events++;
        this.ended = { kind: 'complete', events, lines: line };
        yield { events: [value as E], firstLine: line };
        return;
      }
      const text = chunk.bytes.toString('utf8', chunk.start, chunk.end);
      const firstLine = line;
      let values = parseJoined(text);
      const seqBefore = lastSeq;
      try {
        if (values !== undefined) for (let i = 0; i < values.length; i++) lastSeq = this.accept(values[i], firstLine + i, lastSeq);
      } catch {
        values = undefined; // the fast path's line numbers are only proven for objects: redo it slowly
        lastSeq = seqBefore;
      }
      if (values === undefined) {
        values = this.parseEach(text, firstLine);
        for (let i = 0; i < values.length; i++) lastSeq = this.accept(values[i], firstLine + i, lastSeq);
      }
      line += values.length;
      events += values.length;
      yield { events: values as E[], firstLine };
    }
    this.ended = { kind: 'complete', events, lines: line - 1 };
  }

  /** One JSON.parse per line: the slow path, which names the line that is not JSON. */
  private parseEach(text: string, firstLine: number): unknown[] {
    const values: unknown[] = [];
    let pos = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', pos)) {
      const lineText = text.slice(pos, nl);
      try {
        values.push(parseJsonExact(lineText));
      } catch (cause) {
        throw new InputError(
          lineText.trim() === '' ? 'empty line' : `not valid JSON: ${(cause as Error).message}`,
          { file: this.file, line: firstLine + values.length },
          { cause },
        );
      }
      pos = nl + 1;
    }
    return values;
  }

  /** Validates one parsed line; returns its seq. */
  private accept(value: unknown, line: number, lastSeq: number): number {
    const problem = checkEvent(value, this.check);
    if (problem !== undefined) {
      throw new InputError(problem.message, { file: this.file, line, field: problem.field });
    }
    const seq = (value as { seq: number }).seq;
    if (seq <= lastSeq) {
      throw new InputError(`seq ${seq} does not increase (the line before has seq ${lastSeq})`, {
        file: this.file,
        line,
        field: 'seq',
      }, { hint: 'seq must be strictly increasing within one file' });
    }
    return seq;
  }
}

/** Bytes [start, end) of `bytes`: whole lines ending in a newline, or (tail) the last line without one. */
interface Chunk {
  bytes: Buffer;
  start: number;
  end: number;
  tail: boolean;
}

class LineTooLong extends Error {}

/** Room kept in front of each read for the unfinished line carried over from the last one. */
const CARRY_ROOM = 64 * 1024;

/**
 * Splits a file into runs of whole lines, reading ahead: the next read is under way
 * while the caller parses the current run (the read would otherwise leave the thread
 * idle for about a tenth of the time). Two buffers take turns; the unfinished line at
 * the end of one read is copied in front of the next, so only whole lines are decoded
 * (a newline byte never sits inside a UTF-8 sequence). A yielded chunk is valid until
 * the caller asks for the next one.
 */
async function* wholeLines(handle: FileHandle, chunkBytes: number): AsyncGenerator<Chunk> {
  const room = Math.min(CARRY_ROOM, chunkBytes);
  const buffers = [Buffer.allocUnsafe(room + chunkBytes), Buffer.allocUnsafe(room + chunkBytes)] as const;
  let turn = 0;
  let carry = Buffer.alloc(0); // never inside the buffer being read into
  let pending: Promise<{ bytesRead: number }> | undefined = handle.read(buffers[0], room, chunkBytes, null);
  let first = true;
  try {
    for (;;) {
      const cur = buffers[turn]!;
      const { bytesRead } = await pending!;
      pending = undefined;
      if (bytesRead === 0) {
        if (carry.length > 0) yield { bytes: carry, start: 0, end: carry.length, tail: true };
        return;
      }
      let bytes = cur;
      let start = room - carry.length;
      const end = room + bytesRead;
      if (carry.length <= room) carry.copy(cur, start);
      else {
        if (carry.length > MAX_LINE_BYTES) throw new LineTooLong(`line longer than ${MAX_LINE_BYTES} bytes`);
        bytes = Buffer.concat([carry, cur.subarray(room, end)]);
        start = 0;
      }
      const stop = bytes === cur ? end : bytes.length;
      if (first) {
        first = false;
        // A UTF-8 byte order mark (Windows PowerShell writes one) is not part of line 1.
        if (stop - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) start += 3;
      }
      const lastNl = bytes.lastIndexOf(NEWLINE, stop - 1);
      turn = 1 - turn;
      if (lastNl < start) {
        // No whole line yet: all of it is carried (copied, as its buffer is read into next but one).
        carry = Buffer.from(bytes.subarray(start, stop));
        pending = handle.read(buffers[turn]!, room, chunkBytes, null);
        continue;
      }
      carry = bytes.subarray(lastNl + 1, stop);
      pending = handle.read(buffers[turn]!, room, chunkBytes, null);
      // Runs of whole lines of about PARSE_RUN bytes (a longer line makes a longer run).
      for (let from = start; from <= lastNl; ) {
        let to = from + PARSE_RUN >= lastNl ? lastNl : bytes.lastIndexOf(NEWLINE, from + PARSE_RUN);
        if (to < from) to = bytes.indexOf(NEWLINE, from + PARSE_RUN);
        yield { bytes, start: from, end: to + 1, tail: false };
        from = to + 1;
      }
    }
  } finally {
    // Never close the file under a read still in flight (the caller stopped early).
    await pending?.catch(() => undefined);
  }
}

// Two objects on one line can only be joined by `}`, a comma and `{` with blanks between.
const TWO_ON_ONE_LINE = /\}[ \t\r]*,[ \t\r]*\{/;

/**
 * The fast path: parses all lines of `text` (which ends with a newline) with a single
 * JSON.parse of `[line,line,...]`, a fifth cheaper than one call per line. It gives up
 * (undefined) unless that provably yields exactly one value per line: no line holds an
 * array-level comma (TWO_ON_ONE_LINE; values that are not objects are refused later by
 * the validator, and then the slow path reports them), and the count of values equals
 * the count of lines, so no value spans a line break. Malformed text always takes the
 * slow path, which names the line.
 */
export function parseJoined(text: string): unknown[] | undefined {
  if (TWO_ON_ONE_LINE.test(text)) return undefined;
  let lines = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) lines++;
  let values: unknown;
  try {
    values = parseJsonExact(`[${text.slice(0, -1).replaceAll('\n', ',')}]`);
  } catch {
    return undefined;
  }
  return Array.isArray(values) && values.length === lines ? values : undefined;
}

/** Reads a trace in the schema's own terms (numeric ch and tx). */
export function openTrace(file: string, options: ReadOptions = {}): TraceReader<TraceEvent> {
  return new TraceReader<TraceEvent>(file, options, false);
}

/** Reads a trace as a source wrote it (ids may be strings); normalise.ts maps it. */
export function openSourceTrace(file: string, options: ReadOptions = {}): TraceReader<SourceEvent> {
  return new TraceReader<SourceEvent>(file, options, true);
}

/** Reads a whole (small) trace into memory: tests, fixtures, short runs. */
export async function readTraceFile(
  file: string,
  options: ReadOptions = {},
): Promise<{ events: LocatedEvent[]; end: ReadEnd }> {
  const reader = openTrace(file, options);
  const events: LocatedEvent[] = [];
  for await (const e of reader) events.push(e);
  return { events, end: reader.end! };
}
