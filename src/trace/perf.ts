// Trace reading benchmark for `bench perf` (target: >= 1 million events/s read and
// validated, < 300 MB peak RSS, independent of the trace length).
//
// It writes a synthetic trace with the real writer to a temp file, then times reading
// and validating it with the real reader. The writing runs in a child process, so that
// the reading's peak is not the writing's leftovers (`bench check` only reads; a worker
// thread would not do, as the process keeps the memory a finished worker used). Peak memory is the largest process RSS seen
// while reading, sampled every 16 batches (1 MiB of trace). Numbers are printed
// by the caller; nothing here asserts them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { EventBody } from './schema.ts';
import { StampingSink } from './sink.ts';
import { openTrace } from './reader.ts';
import { TraceWriter } from './writer.ts';

export interface TraceReadBenchmark {
  traceReadEventsPerSec: number;
  traceReadPeakRssMb: number;
}

export interface TraceReadBenchmarkOptions {
  /** Events in the synthetic trace (default 10 million). */
  events?: number;
}

export async function benchmarkTraceRead(options: TraceReadBenchmarkOptions = {}): Promise<TraceReadBenchmark> {
  const total = options.events ?? 10_000_000;
  const dir = await mkdtemp(join(tmpdir(), 'bench-trace-perf-'));
  const file = join(dir, 'synthetic.jsonl');
  try {
    await writeInChildProcess(file, total);
    const reader = openTrace(file);
    let peak = process.memoryUsage.rss();
    let read = 0;
    const t0 = performance.now();
    let batches = 0;
    for await (const batch of reader.batches()) {
      read += batch.events.length;
      if (++batches % 16 === 0) peak = Math.max(peak, process.memoryUsage.rss());
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    const seconds = (performance.now() - t0) / 1000;
    if (read !== total) throw new Error(`trace benchmark read ${read} events of ${total}`);
    return {
      traceReadEventsPerSec: Math.round(read / seconds),
      traceReadPeakRssMb: Math.round((peak / (1 << 20)) * 10) / 10,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A plausible traffic mix: guest requests with completions, host notifies, and a
 * save/restore every 10 000 events with the in-flight packets saved and restored.
 */
export function writeSyntheticTrace(file: string, total: number): void {
  const writer = TraceWriter.create(file);
  const sink = new StampingSink('emulator', writer.write);
  const emit = (body: EventBody): boolean => {
    if (sink.lastSeq >= total) return false;
    sink.emit(body);
    return true;
  };
  try {
    let tx = 0;
    emit({ side: 'bench', ev: 'scenario.begin', name: 'synthetic', seed: 1 });
    while (sink.lastSeq < total) {
      tx++;
      const half = (Math.imul(tx, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0');
      const digest = half + half;
      const ch = (tx % 4) + 1;
      if (tx % 2500 === 0) {
        emit({ side: 'bench', ev: 'vm.save.begin' });
        emit({ side: 'host', ev: 'pkt.save', ch, tx, dir: 'h2g', libLen: 0, saveLen: 32, saveDigest: digest });
        emit({ side: 'bench', ev: 'vm.save.end' });
        emit({ side: 'bench', ev: 'vm.restore.begin' });
        emit({ side: 'host', ev: 'pkt.restore', ch, tx, dir: 'h2g', saveDigest: digest });
        emit({ side: 'bench', ev: 'vm.restore.end' });
      }
      emit({ side: 'guest', ev: 'pkt.send', ch, tx, dir: 'g2h', len: 24 + (tx % 200), digest, wantCompletion: true });
      emit({ side: 'host', ev: 'pkt.recv', ch, tx, dir: 'g2h', len: 24 + (tx % 200), digest });
      emit({ side: 'host', ev: 'pkt.complete', ch, tx, dir: 'g2h', status: '00000000', len: 32, digest });
      emit({ side: 'guest', ev: 'pkt.completion', ch, tx, dir: 'g2h', status: '00000000', digest });
    }
  } finally {
    writer.close();
  }
}

const WRITE_FLAG = '--write-synthetic-trace';

async function writeInChildProcess(file: string, total: number): Promise<void> {
  await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), WRITE_FLAG, file, String(total)]);
}

// Run as a script by writeInChildProcess: write the trace and end.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === WRITE_FLAG) {
  writeSyntheticTrace(process.argv[3]!, Number(process.argv[4]));
}
