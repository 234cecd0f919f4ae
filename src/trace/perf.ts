// Trace reading benchmark for `bench perf` (target: >= 1 million events/s read and
// validated, < 300 MB peak RSS, independent of the trace length).
//
// It writes a synthetic trace with the real writer to a temp file, then times reading
// and validating it with the real reader. Each step runs in a child process of its own,
// as `bench check` runs in a fresh process: the reading's peak memory is then its own
// (exact rather than sampled; see peak-rss.ts), not what earlier benchmarks or the
// writing left in this process. Numbers are printed by the caller; nothing here asserts
// them.
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
import { peakRssBytes } from '../peak-rss.ts';

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
    await runSelf(WRITE_FLAG, file, String(total));
    const r = JSON.parse(await runSelf(READ_FLAG, file)) as { events: number; seconds: number; maxRssBytes: number };
    if (r.events !== total) throw new Error(`trace benchmark read ${r.events} events of ${total}`);
    return {
      traceReadEventsPerSec: Math.round(r.events / r.seconds),
      traceReadPeakRssMb: Math.round((r.maxRssBytes / (1 << 20)) * 10) / 10,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads and validates a trace, as `bench check` does, and says how fast and how big. */
async function measureRead(file: string): Promise<{ events: number; seconds: number; maxRssBytes: number }> {
  let events = 0;
  const t0 = performance.now();
  for await (const batch of openTrace(file).batches()) events += batch.events.length;
  const seconds = (performance.now() - t0) / 1000;
  return { events, seconds, maxRssBytes: peakRssBytes() };
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
const READ_FLAG = '--measure-trace-read';

/** Runs this file as a script in a fresh Node process; resolves to its stdout. */
async function runSelf(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), ...args]);
  return stdout;
}

// Run as a script by runSelf.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [flag, file, total] = process.argv.slice(2);
  if (flag === WRITE_FLAG) writeSyntheticTrace(file!, Number(total));
  if (flag === READ_FLAG) process.stdout.write(JSON.stringify(await measureRead(file!)));
}
