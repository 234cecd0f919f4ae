// The `bench check` benchmark: write a long emulator trace, then check it in a child
// process so that its peak memory is its own (the parent has run other benchmarks).
// The child runs checkTraces as `bench check` does, with nothing added: the reading
// thread and the V8 settings that keep the peak flat (check-trace.ts) are the command's
// own, so a user's check behaves as measured here.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadScenarioFile } from '../../scenario/loader.ts';
import { executeScenario } from '../../scenario/execute.ts';
import { StampingSink } from '../../trace/sink.ts';
import { TraceWriter } from '../../trace/writer.ts';
import { checkTraces } from './check-trace.ts';
import { peakRssBytes } from '../../peak-rss.ts';

/**
 * A scenario of about `events` trace events: rounds of 500 requests and 500 host
 * transactions (four events each), like steady traffic rather than one huge burst.
 */
function bigScenario(events: number): Record<string, unknown> {
  const perRound = 500 * 4 * 2;
  const rounds = Math.max(1, Math.round(events / perRound));
  const steps: unknown[] = [];
  for (let i = 0; i < rounds; i++) {
    steps.push({ op: 'guest-send', count: 500, size: 64 }, { op: 'host-send', count: 500, size: 64 }, { op: 'run', ms: 1 });
  }
  return { name: 'perf-check', channels: [{ id: 0, g2hPages: 64, h2gPages: 64 }], steps };
}

export async function benchmarkCheck(events: number): Promise<{ checkTraceEvents: number; checkEventsPerSec: number; checkPeakRssMb: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-perf-check-'));
  try {
    const scenarioFile = join(dir, 'perf-check.yaml');
    writeFileSync(scenarioFile, stringify(bigScenario(events)));
    const s = await loadScenarioFile(scenarioFile);
    const trace = join(dir, 'trace.jsonl');
    const writer = TraceWriter.create(trace);
    const made = executeScenario(s, { seed: 1, sink: new StampingSink('hyperv', writer.write) });
    writer.close();
    if (made.hang) throw new Error(`the benchmark's own trace did not finish: ${made.hang.reason}`);
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), scenarioFile, trace], { encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(out) as { checkTraceEvents: number; checkEventsPerSec: number; checkPeakRssMb: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The child: check one trace and report events/s and peak RSS.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [scenarioFile, trace] = process.argv.slice(2) as [string, string];
  const s = await loadScenarioFile(scenarioFile);
  const t0 = performance.now();
  const r = await checkTraces(s, [trace], { minimise: false });
  const ms = performance.now() - t0;
  if (r.result.verdict !== 'pass') throw new Error(`benchmark trace did not pass: ${JSON.stringify(r.result).slice(0, 300)}`);
  process.stdout.write(
    JSON.stringify({
      checkTraceEvents: r.result.events,
      checkEventsPerSec: Math.round(r.result.events / (ms / 1000)),
      checkPeakRssMb: Math.round(peakRssBytes() / (1 << 20)),
    }),
  );
}
