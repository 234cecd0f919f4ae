// The reading thread of read-ahead.ts: reads, parses and validates a trace into batches
// and posts them, staying at most READ_AHEAD batches ahead of the consumer. It opens the
// file and closes it when it stops (the end, a problem, or the consumer's STOP).
import { closeSync, openSync } from 'node:fs';
import { workerData, type MessagePort } from 'node:worker_threads';
import { LineBatcher } from './line-batches.ts';
import { ENDED, POSTED, READ_AHEAD, STARTED, STOP, TAKEN, type ReadAheadMessage } from './read-ahead.ts';

const { file, ctrl, port } = workerData as { file: string; ctrl: Int32Array; port: MessagePort };
Atomics.store(ctrl, STARTED, 1);
let posted = 0;
let fd: number | null = null;
try {
  let batcher: LineBatcher | null = null;
  for (;;) {
    if (!waitForRoom()) break;
    let msg: ReadAheadMessage;
    try {
      batcher ??= new LineBatcher((fd = openSync(file, 'r')));
      msg = { kind: 'batch', batch: batcher.next() };
    } catch (e) {
      msg = { kind: 'failed', message: (e as Error).message, code: (e as NodeJS.ErrnoException).code };
    }
    port.postMessage(msg, msg.kind === 'batch' ? [msg.batch.nums.buffer as ArrayBuffer] : []);
    Atomics.store(ctrl, POSTED, ++posted);
    Atomics.notify(ctrl, POSTED);
    if (msg.kind === 'failed' || msg.batch.done) break;
  }
} finally {
  if (fd !== null) closeSync(fd);
  // The port stays open: batches still queued for the consumer must reach it (it closes it).
  // Last, so that the consumer sees every batch posted before it sees the end.
  Atomics.store(ctrl, ENDED, 1);
  Atomics.notify(ctrl, POSTED);
}

/** Waits until the consumer has taken enough; false when it wants no more. */
function waitForRoom(): boolean {
  for (;;) {
    if (Atomics.load(ctrl, STOP) === 1) return false;
    const taken = Atomics.load(ctrl, TAKEN);
    if (posted - taken < READ_AHEAD) return true;
    Atomics.wait(ctrl, TAKEN, taken);
  }
}
