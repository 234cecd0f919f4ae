// Reads a trace file synchronously into batches of parsed, validated events
// (event-columns.ts), with the line rules of `bench check`:
//
//   - a blank line is "empty line", as in reader.ts and test/fixtures/trace/malformed
//     (a writer never leaves one, so one inside a trace means it was edited or spliced);
//     blanks after the last newline are no line;
//   - a line that is not JSON is "not valid JSON", except the last line of a file that
//     has no newline: that is what a writer that crashed leaves, and the reading ends
//     there as truncated, every event before it kept;
//   - an object that is not a valid event is the validator's problem, naming the field;
//   - seq must increase from line to line.
// The first problem ends the reading; the checker reports it only if it reads that far
// (a divergence earlier in the trace is the result then).
//
// Memory is constant in the trace length: one buffer of whole lines at a time (a line
// longer than the buffer grows it, up to MAX_LINE_BYTES).
import { parseJsonExact } from './json-ids.ts';
import { readSync } from 'node:fs';
import type { TraceEvent } from './schema.ts';
import { checkEvent } from './validate.ts';
import { parseJoined } from './reader.ts';
import { BatchWriter, hasSchemaShape, type EventBatch, type LineProblem } from './event-columns.ts';
import { LineScanner } from './line-scanner.ts';

/**
 * Bytes per read. About 1,700 events of 150 bytes: a batch is then 256 KiB of text and
 * ~270 KiB of numbers, still small enough to die in V8's young generation, and few
 * enough that handing batches between threads costs little (at 64 KiB the hand-over,
 * four times as many, was a twentieth of the checking thread's time).
 */
const CHUNK = 256 * 1024;
/** A longer line is refused rather than grown into (a trace line is a few hundred bytes). */
const MAX_LINE_BYTES = 64 << 20;
const NEWLINE = 0x0a;

export class LineBatcher {
  private readonly fd: number;
  /** bytes [0, carry) are an unfinished line from the last read */
  private buf = Buffer.allocUnsafe(2 * CHUNK);
  private carry = 0;
  /** lines consumed so far (the number of the last one) */
  private line = 0;
  private lastSeq = -Infinity;
  private ended = false;
  private readonly scanner = new LineScanner();

  constructor(fd: number) {
    this.fd = fd;
  }

  /** The next batch; the last one has `done` set. Read errors (EISDIR, EIO) are thrown. */
  next(): EventBatch {
    if (this.ended) return new BatchWriter(0).finish(true);
    for (;;) {
      if (this.carry + CHUNK > this.buf.length) {
        if (this.carry >= MAX_LINE_BYTES) {
          const w = new BatchWriter(1);
          this.stop(w, this.line + 1, { message: `line longer than ${MAX_LINE_BYTES} bytes` });
          return w.finish(true);
        }
        this.grow();
      }
      const n = readSync(this.fd, this.buf, this.carry, CHUNK, null);
      if (n === 0) return this.lastLine();
      const end = this.carry + n;
      const lastNl = this.buf.lastIndexOf(NEWLINE, end - 1);
      if (lastNl < 0) {
        this.carry = end; // no whole line yet
        continue;
      }
      const fast = this.scanner.scan(this.buf, 0, lastNl + 1, this.line + 1, this.lastSeq);
      let batch: EventBatch;
      if (fast !== undefined) {
        batch = fast.batch;
        this.line += batch.records;
        this.lastSeq = fast.lastSeq;
      } else {
        const text = this.buf.toString('utf8', 0, lastNl + 1);
        const w = new BatchWriter(countLines(text));
        this.wholeLines(text, w);
        batch = w.finish(this.ended);
      }
      this.buf.copyWithin(0, lastNl + 1, end);
      this.carry = end - lastNl - 1;
      return batch;
    }
  }

  private grow(): void {
    const bigger = Buffer.allocUnsafe(this.buf.length * 2);
    this.buf.copy(bigger, 0, 0, this.carry);
    this.buf = bigger;
  }

  /** `text`: whole lines, each ending in a newline. */
  private wholeLines(text: string, w: BatchWriter): void {
    // The next fastest path after line-scanner.ts: one JSON.parse for all lines (see
    // parseJoined), taken when every value is a valid event in the schema's shape with
    // increasing seq; otherwise line by line.
    const values = parseJoined(text);
    if (values !== undefined && this.allPlain(values)) {
      for (let i = 0; i < values.length; i++) w.event(values[i] as TraceEvent, ++this.line, unreachable);
      this.lastSeq = (values[values.length - 1] as TraceEvent).seq;
      return;
    }
    let pos = 0;
    for (let nl = text.indexOf('\n'); nl >= 0 && !this.ended; nl = text.indexOf('\n', pos)) {
      this.oneLine(text.slice(pos, nl), w, false);
      pos = nl + 1;
    }
  }

  private allPlain(values: unknown[]): boolean {
    let seq = this.lastSeq;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (checkEvent(v) !== undefined || !hasSchemaShape(v as TraceEvent) || !((v as TraceEvent).seq > seq)) return false;
      seq = (v as TraceEvent).seq;
    }
    return true;
  }

  /** At the end of the file: the line without a newline, if any. */
  private lastLine(): EventBatch {
    const w = new BatchWriter(1);
    if (this.carry > 0) this.oneLine(this.buf.toString('utf8', 0, this.carry), w, true);
    this.carry = 0;
    this.ended = true;
    return w.finish(true);
  }

  private oneLine(text: string, w: BatchWriter, last: boolean): void {
    const line = ++this.line;
    // Blanks after the last newline are no line at all.
    if (text.trim() === '') return last ? undefined : this.stop(w, line, { message: 'empty line' });
    let value: unknown;
    try {
      value = parseJsonExact(text);
    } catch {
      if (last) w.truncated(line);
      else this.stop(w, line, { message: 'not valid JSON' });
      return;
    }
    const problem = checkEvent(value);
    if (problem) return this.stop(w, line, { message: problem.message, field: problem.field });
    const event = value as TraceEvent;
    if (!(event.seq > this.lastSeq)) {
      return this.stop(w, line, { message: `seq ${event.seq} does not increase (previous ${this.lastSeq})`, field: 'seq' });
    }
    this.lastSeq = event.seq;
    w.event(event, line, () => text);
  }

  private stop(w: BatchWriter, line: number, p: LineProblem): void {
    w.problem(line, p);
    this.ended = true;
  }
}

function countLines(text: string): number {
  let n = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) n++;
  return n;
}

/** The fast path only takes events in the schema's shape, which never need their text. */
function unreachable(): string {
  throw new Error('an event in the schema shape was asked for its text');
}
