// Append-only, streaming trace writer (TRACE-SCHEMA.md).
//
// The emulator emits events synchronously through a StampingSink, so `write` is
// synchronous too: lines collect in a small buffer and go to the file with one
// writeSync whenever it passes `bufferChars`. Memory therefore stays bounded however
// long the trace, and a slow disk slows the producer instead of growing a queue.
// `close` flushes, fsyncs and closes, so a trace that was closed survives a crash of
// the machine; a process that dies before `close` leaves at most one partial last line,
// which the reader reports as truncated.
//
//   const writer = TraceWriter.create('run/emulator.jsonl');
//   const sink = new StampingSink('emulator', writer.write);
//   ... emulate ...
//   writer.close();
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { InfraError } from '../errors.ts';
import type { TraceEvent } from './schema.ts';
import { formatEvent } from './sink.ts';

export interface WriterOptions {
  /** `truncate` (default) replaces an existing file; `exclusive` refuses to touch one. */
  ifExists?: 'truncate' | 'exclusive';
  /** Characters to collect before a write to the file (default 256 Ki). */
  bufferChars?: number;
}

const DEFAULT_BUFFER_CHARS = 256 * 1024;

export class TraceWriter {
  readonly file: string;
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingChars = 0;
  private readonly bufferChars: number;
  private lastSeq = -Infinity;
  private count = 0;

  private constructor(file: string, fd: number, bufferChars: number) {
    this.file = file;
    this.fd = fd;
    this.bufferChars = bufferChars;
  }

  /** Opens (creates) the trace file for writing. */
  static create(file: string, options: WriterOptions = {}): TraceWriter {
    let fd: number;
    try {
      fd = openSync(file, options.ifExists === 'exclusive' ? 'wx' : 'w');
    } catch (cause) {
      throw new InfraError(`cannot create trace file ${file}: ${(cause as Error).message}`, { cause });
    }
    return new TraceWriter(file, fd, options.bufferChars ?? DEFAULT_BUFFER_CHARS);
  }

  /** Appends one event. Bound, so it can be handed to a StampingSink as is. */
  readonly write = (e: TraceEvent): void => {
    if (this.fd === undefined) throw new Error(`trace writer for ${this.file} is closed`);
    // Invariant: seq strictly increases within one file; a sink that breaks it is a bug.
    if (!(e.seq > this.lastSeq)) {
      throw new Error(`trace writer for ${this.file}: seq ${e.seq} after ${this.lastSeq} does not increase`);
    }
    this.lastSeq = e.seq;
    const line = formatEvent(e) + '\n';
    this.pending.push(line);
    this.pendingChars += line.length;
    this.count++;
    if (this.pendingChars >= this.bufferChars) this.flush();
  };

  /** Events accepted so far (written or still buffered). */
  get eventsWritten(): number {
    return this.count;
  }

  get closed(): boolean {
    return this.fd === undefined;
  }

  /** Hands buffered lines to the operating system (no fsync: that is `close`'s job). */
  flush(): void {
    if (this.fd === undefined || this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    const bytes = Buffer.from(text, 'utf8');
    try {
      // A regular file normally takes it all at once; loop for the rare short write.
      for (let off = 0; off < bytes.length; ) off += writeSync(this.fd, bytes, off, bytes.length - off);
    } catch (cause) {
      throw new InfraError(`cannot write trace file ${this.file}: ${(cause as Error).message}`, { cause });
    }
  }

  /** Flushes, fsyncs and closes. Closing twice is harmless. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    try {
      this.flush();
      fsyncSync(fd);
    } catch (cause) {
      if (cause instanceof InfraError) throw cause;
      throw new InfraError(`cannot sync trace file ${this.file}: ${(cause as Error).message}`, { cause });
    } finally {
      this.fd = undefined;
      closeSync(fd);
    }
  }
}

/** Writes a whole sequence of events to a file and closes it. */
export function writeTraceFile(file: string, events: Iterable<TraceEvent>, options: WriterOptions = {}): number {
  const writer = TraceWriter.create(file, options);
  try {
    for (const e of events) writer.write(e);
  } finally {
    writer.close();
  }
  return writer.eventsWritten;
}

/**
 * Writes a trace to `file` atomically: `produce` writes through a writer on
 * `file.partial`, which is renamed into place when it returns and removed when it
 * throws, so a crash or an error never leaves a trace that looks whole but is not.
 */
export function withTraceFile<T>(file: string, produce: (write: (e: TraceEvent) => void) => T): T {
  const tmp = `${file}.partial`;
  const writer = TraceWriter.create(tmp);
  let out: T;
  try {
    out = produce(writer.write);
    writer.close();
  } catch (e) {
    abandon(writer, tmp);
    throw e;
  }
  renameSync(tmp, file);
  return out;
}

/** withTraceFile for a producer that finishes later (a run handed between threads). */
export async function withTraceFileAsync<T>(file: string, produce: (write: (e: TraceEvent) => void) => Promise<T>): Promise<T> {
  const tmp = `${file}.partial`;
  const writer = TraceWriter.create(tmp);
  let out: T;
  try {
    out = await produce(writer.write);
    writer.close();
  } catch (e) {
    abandon(writer, tmp);
    throw e;
  }
  renameSync(tmp, file);
  return out;
}

function abandon(writer: TraceWriter, tmp: string): void {
  try {
    writer.close();
  } catch {
    // the error that made us abandon the trace is the one to report
  } finally {
    rmSync(tmp, { force: true });
  }
}
