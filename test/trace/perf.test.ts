// The benchmark runs here on a small trace so that it is known to work; `bench perf`
// runs it at 10 million events. Timings are printed, never asserted.
import { describe, expect, it } from 'vitest';
import { benchmarkTraceRead } from '../../src/trace/perf.ts';

describe('benchmarkTraceRead', () => {
  it('writes, reads and validates a synthetic trace and reports rate and peak memory', async () => {
    const r = await benchmarkTraceRead({ events: 50_000 });
    console.log(`trace read (50k events): ${r.traceReadEventsPerSec} events/s, peak RSS ${r.traceReadPeakRssMb} MB`);
    expect(Number.isFinite(r.traceReadEventsPerSec)).toBe(true);
    expect(r.traceReadEventsPerSec).toBeGreaterThan(0);
    expect(r.traceReadPeakRssMb).toBeGreaterThan(0);
  });
});
