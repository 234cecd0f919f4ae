// Batches of a trace file for a synchronous consumer (`bench check`, which drives the
// emulator event by event and so cannot await), read either on the calling thread or
// ahead of it on a worker thread.
//
// Reading, JSON parsing and validation cost about as much as the checking itself, and
// the machine has more than one core: on a thread of their own they overlap with the
// replay. The batches come back as columns (event-columns.ts), which are cheap to turn
// back into objects. The consumer blocks with Atomics.wait when it has caught up, and
// the reader when it is READ_AHEAD batches ahead, so memory stays constant.
//
// This thread is not the emulator's (STYLE.md 10 keeps worker threads for the emulator):
// it is the reading half of a synchronous reader, and nothing in it touches the lab.
import { closeSync, fstatSync } from 'node:fs';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { InfraError, InputError } from '../errors.ts';
import type { EventBatch } from './event-columns.ts';
import { LineBatcher } from './line-batches.ts';

export interface BatchSource {
  /** The next batch (the last has `done` set). Throws the error that stopped the reading. */
  next(): EventBatch;
  close(): void;
}

/** What the reading thread posts: a batch, or why it could not read on. */
export type ReadAheadMessage = { kind: 'batch'; batch: EventBatch } | { kind: 'failed'; message: string; code: string | undefined };

/** Indices into the shared control words. */
export const POSTED = 0; // batches posted by the reader
export const TAKEN = 1; // batches taken by the consumer
export const STOP = 2; // set by the consumer: read no further
export const STARTED = 3; // set by the reader once running
export const ENDED = 4; // set by the reader when it stops, for whatever reason

/** Batches the reader may be ahead: about 1,700 events each (line-batches.ts). */
export const READ_AHEAD = 8;

/** Files smaller than this are read on the calling thread: starting a thread costs ~50 ms. */
const THREAD_MIN_BYTES = 16 << 20;
/** How long a reading thread may take to start (its modules are loaded and compiled). */
const START_TIMEOUT_MS = 60_000;

/**
 * The reading thread's young generation, in MB. Its objects (a parsed line) die as soon
 * as the line is encoded, so a small one costs nothing; left to itself V8 doubles it up
 * to 3 x 64 MB over a long trace, which added ~50 MB to the peak at 10 million events.
 */
const READER_YOUNG_GENERATION_MB = 8;

export type ReadAheadMode = 'auto' | 'thread' | 'inline';

/**
 * Batches of `file`, open as `fd` (which the source then owns). `auto` reads large files
 * on a worker thread and small ones inline.
 */
export function openBatchSource(file: string, fd: number, mode: ReadAheadMode = 'auto'): BatchSource {
  let thread = mode === 'thread';
  if (mode === 'auto') {
    try {
      thread = fstatSync(fd).size >= THREAD_MIN_BYTES;
    } catch {
      thread = false; // the reading reports the problem
    }
  }
  return thread ? new ThreadBatches(file, fd) : new InlineBatches(file, fd);
}

/** The error a failed read becomes (on either thread). */
function readFailure(file: string, message: string, code: string | undefined): Error {
  if (code === 'EISDIR') return new InputError('is a directory, not a trace file', { file });
  return new InfraError(`cannot read trace ${file}: ${message}`);
}

class InlineBatches implements BatchSource {
  private readonly file: string;
  private fd: number | null;
  private readonly batcher: LineBatcher;

  constructor(file: string, fd: number) {
    this.file = file;
    this.fd = fd;
    this.batcher = new LineBatcher(fd);
  }

  next(): EventBatch {
    try {
      return this.batcher.next();
    } catch (e) {
      throw readFailure(this.file, (e as Error).message, (e as NodeJS.ErrnoException).code);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

class ThreadBatches implements BatchSource {
  private readonly file: string;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(5 * Int32Array.BYTES_PER_ELEMENT));
  private taken = 0;
  private closed = false;

  constructor(file: string, fd: number) {
    this.file = file;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    // The thread opens the file itself (Node tracks descriptors per thread); this one
    // was opened only to report a missing or unreadable file at once.
    closeSync(fd);
    this.worker = new Worker(new URL('./read-ahead-worker.ts', import.meta.url), {
      workerData: { file, ctrl: this.ctrl, port: port2 },
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: READER_YOUNG_GENERATION_MB },
    });
    this.worker.unref(); // never keeps the process alive: it stops when told, or at the end
    this.worker.on('error', () => undefined); // the consumer sees ENDED without the last batch
  }

  next(): EventBatch {
    const started = Date.now();
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (m !== undefined) {
        this.taken++;
        Atomics.store(this.ctrl, TAKEN, this.taken);
        Atomics.notify(this.ctrl, TAKEN);
        const msg = m.message as ReadAheadMessage;
        if (msg.kind === 'failed') throw readFailure(this.file, msg.message, msg.code);
        return msg.batch;
      }
      // Invariant: a batch is in the port's queue before POSTED counts it, so a count
      // above `taken` means the message can be received now.
      const ended = Atomics.load(this.ctrl, ENDED) === 1; // read first: POSTED is final then
      const posted = Atomics.load(this.ctrl, POSTED);
      if (posted > this.taken) continue;
      if (ended) {
        // Everything it posted was taken, and it will post nothing more: it failed in a
        // way it could not report (it reports read errors as a 'failed' message).
        throw new InfraError(`the thread reading ${this.file} stopped before the end of the file`);
      }
      Atomics.wait(this.ctrl, POSTED, posted, 1000);
      if (Atomics.load(this.ctrl, STARTED) === 0 && Date.now() - started > START_TIMEOUT_MS) {
        throw new InfraError(`the thread reading ${this.file} did not start within ${START_TIMEOUT_MS / 1000} s`);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, STOP, 1);
    // Changing TAKEN wakes a reader waiting for room, and one about to wait does not start.
    Atomics.add(this.ctrl, TAKEN, READ_AHEAD);
    Atomics.notify(this.ctrl, TAKEN);
    this.port.close();
  }
}
