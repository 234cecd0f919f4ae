// Where the checker takes observed events from, one at a time and synchronously.
//
// The emulator runs synchronously, and trace validation drives it event by event, so
// the observed trace is pulled, not pushed. A single trace file is read with readSync
// in large chunks (constant memory in the trace length); several files from one run are
// merged by the asynchronous normaliser first and handed over as an array.

import { openSync, readSync, closeSync } from 'node:fs';
import { InputError } from '../errors.ts';
import type { TraceEvent } from '../trace/schema.ts';
import { checkEvent } from '../trace/validate.ts';

export interface ObservedEvent {
  event: TraceEvent;
  file: string;
  line: number;
}

export interface ObservedSource {
  /** The next event, or null at the end. Throws InputError on a malformed line. */
  next(): ObservedEvent | null;
  close(): void;
}

export class ArraySource implements ObservedSource {
  private i = 0;
  private readonly events: readonly ObservedEvent[];
  constructor(events: readonly ObservedEvent[]) {
    this.events = events;
  }
  next(): ObservedEvent | null {
    return this.events[this.i++] ?? null;
  }
  close(): void {}
}

const CHUNK = 1 << 20;

/**
 * Reads a JSON Lines trace synchronously. A malformed line, an unknown version or a seq
 * that does not increase is an InputError naming file, line and field. A last line
 * without its newline that does not parse (a writer that crashed) ends the trace there:
 * `truncatedAt` then holds its line number.
 */
export class FileSource implements ObservedSource {
  readonly file: string;
  private fd: number | null;
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private lines: string[] = [];
  private li = 0;
  private rest = '';
  private lineNo = 0;
  private lastSeq = -Infinity;
  private eof = false;
  truncatedAt: number | null = null;

  constructor(file: string) {
    this.file = file;
    try {
      this.fd = openSync(file, 'r');
    } catch (e) {
      throw new InputError(`cannot read trace: ${(e as Error).message}`, { file });
    }
  }

  private fill(): boolean {
    while (this.li >= this.lines.length) {
      if (this.eof || this.fd === null) return false;
      const n = readSync(this.fd, this.buf, 0, CHUNK, null);
      if (n === 0) {
        this.eof = true;
        if (this.rest.length > 0) {
          this.lines = [this.rest];
          this.rest = '';
          this.li = 0;
          return true;
        }
        return false;
      }
      const text = this.rest + this.buf.toString('utf8', 0, n);
      const parts = text.split('\n');
      this.rest = parts.pop()!;
      this.lines = parts;
      this.li = 0;
    }
    return true;
  }

  next(): ObservedEvent | null {
    for (;;) {
      if (!this.fill()) return null;
      const text = this.lines[this.li++]!;
      this.lineNo++;
      const lastLine = this.eof && this.li >= this.lines.length;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        if (lastLine) {
          this.truncatedAt = this.lineNo;
          return null;
        }
        throw new InputError('not valid JSON', { file: this.file, line: this.lineNo });
      }
      const problem = checkEvent(value);
      if (problem) throw new InputError(problem.message, { file: this.file, line: this.lineNo, field: problem.field });
      const event = value as TraceEvent;
      if (!(event.seq > this.lastSeq)) {
        throw new InputError(`seq ${event.seq} does not increase (previous ${this.lastSeq})`, { file: this.file, line: this.lineNo, field: 'seq' });
      }
      this.lastSeq = event.seq;
      return { event, file: this.file, line: this.lineNo };
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
