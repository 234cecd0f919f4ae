// Where the checker takes observed events from, one at a time and synchronously.
//
// The emulator runs synchronously, and trace validation drives it event by event, so
// the observed trace is pulled, not pushed. A single trace file is read in batches of
// parsed, validated events (trace/line-batches.ts; a large file on a thread of its own,
// trace/read-ahead.ts), in constant memory; several files from one run are merged by the
// asynchronous normaliser first and handed over as an array.

import { openSync } from 'node:fs';
import { InputError } from '../errors.ts';
import type { TraceEvent } from '../trace/schema.ts';
import { BatchReader, PROBLEM, RAW, TRUNCATED } from '../trace/event-columns.ts';
import { openBatchSource, type BatchSource, type ReadAheadMode } from '../trace/read-ahead.ts';

export interface ObservedEvent {
  event: TraceEvent;
  file: string;
  line: number;
  /**
   * Its place in a stream merged from several files (check-trace.ts), where lines of two
   * files say nothing about which came first; absent in one file, whose line is its place.
   */
  order?: number;
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

/**
 * Reads a JSON Lines trace synchronously. A malformed line, an unknown version or a seq
 * that does not increase is an InputError naming file, line and field, raised when the
 * checker reaches that line. A last line without its newline that does not parse (a
 * writer that crashed) ends the trace there: `truncatedAt` then holds its line number.
 */
export class FileSource implements ObservedSource {
  readonly file: string;
  private readonly batches: BatchSource;
  private reader: BatchReader | null = null;
  /** the last batch has been taken */
  private last = false;
  truncatedAt: number | null = null;

  /** `readAhead`: where the file is read (tests choose; `auto` uses a thread for large files). */
  constructor(file: string, opts: { readAhead?: ReadAheadMode } = {}) {
    this.file = file;
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      throw new InputError(`cannot read trace: ${(e as Error).message}`, { file });
    }
    this.batches = openBatchSource(file, fd, opts.readAhead);
  }

  next(): ObservedEvent | null {
    for (;;) {
      const r = this.reader;
      if (r !== null && r.remaining > 0) {
        const code = r.peekCode();
        const line = r.peekLine();
        if (code >= 0 || code === RAW) return { event: r.takeEvent(), file: this.file, line };
        if (code === PROBLEM) {
          const p = r.takeProblem();
          throw new InputError(p.message, { file: this.file, line, field: p.field });
        }
        if (code === TRUNCATED) {
          r.skip();
          this.truncatedAt = line;
        }
        return null; // nothing follows a truncated line
      }
      if (this.last) return null;
      const b = this.batches.next();
      this.last = b.done;
      this.reader = new BatchReader(b);
    }
  }

  close(): void {
    this.batches.close();
  }
}
