// Benchmark: how long report.html takes to render for a large matrix, 50 scenarios x 10 host
// builds x 3 guests = 1,500 jobs (target < 2 s). `bench perf` calls benchmarkReportRender
// and prints the number; tests never assert timings.
//
// The synthetic run is deterministic: about one job in twenty diverges (with a 24-event
// timeline, failed properties and expected alternatives, as a checker would produce), a
// few hang or error, and the history holds 20 earlier runs, so the trends code does its
// full work too.
import { performance } from 'node:perf_hooks';
import type { TraceEvent } from '../trace/schema.ts';
import { renderReport } from './html-report.ts';
import type { JobResult, RunSummary, Verdict } from './summary.ts';
import { cellRowsOf, computeTrends, runRowOf, type CellRow, type RunRow } from './trends.ts';

const CLASSES = ['lost', 'duplicated', 'payload', 'not-saved', 'savebuf-mismatch', 'state-order'];

function timeline(seed: number): TraceEvent[] {
  const out: TraceEvent[] = [];
  let seq = 100 + seed;
  const e = (x: Record<string, unknown>) => out.push({ v: 1, seq: seq++, src: 'hyperv', ...x } as unknown as TraceEvent);
  for (let tx = 1; tx <= 4; tx++) e({ side: 'host', ch: 1, ev: 'pkt.send', tx, dir: 'h2g', len: 64, digest: `d${tx}`.padEnd(16, '0'), wantCompletion: true });
  e({ side: 'guest', ch: 1, ev: 'pkt.recv', tx: 1, dir: 'h2g', len: 64, digest: 'd1'.padEnd(16, '0') });
  e({ side: 'bench', ev: 'vm.save.begin' });
  for (let tx = 1; tx <= 4; tx++) e({ side: 'host', ch: 1, ev: 'pkt.save', tx, dir: 'h2g', libLen: 64, saveLen: 32, saveDigest: `s${tx}`.padEnd(16, '0') });
  e({ side: 'bench', ev: 'vm.save.end' });
  e({ side: 'bench', ev: 'vm.restore.begin' });
  for (let tx = 1; tx <= 3; tx++) e({ side: 'host', ch: 1, ev: 'pkt.restore', tx, dir: 'h2g', saveDigest: `s${tx}`.padEnd(16, '0') });
  e({ side: 'bench', ev: 'vm.restore.end' });
  for (let tx = 1; tx <= 3; tx++) {
    e({ side: 'guest', ch: 1, ev: 'pkt.complete', tx, dir: 'h2g', status: '00000000', len: 8, digest: `c${tx}`.padEnd(16, '0') });
    e({ side: 'host', ch: 1, ev: 'pkt.completion', tx, dir: 'h2g', status: '00000000', digest: `c${tx}`.padEnd(16, '0') });
  }
  return out;
}

export function syntheticSummary(scenarios = 50, builds = 10, guests = 3, runIndex = 20): RunSummary {
  const jobs: JobResult[] = [];
  let n = 0;
  for (let g = 0; g < guests; g++) {
    for (let b = 0; b < builds; b++) {
      for (let s = 0; s < scenarios; s++) {
        n++;
        const h = (n * 2654435761 + runIndex * 40503) >>> 0;
        const verdict: Verdict = h % 20 === 0 ? 'diverge' : h % 97 === 0 ? 'hang' : h % 89 === 0 ? 'error' : h % 61 === 0 ? 'skipped' : 'pass';
        const job: JobResult = {
          jobId: `j${String(n).padStart(5, '0')}`,
          host: `hv-${String(b + 1).padStart(2, '0')}`,
          hostBuild: `10.0.${20348 + b * 577}.${100 + b}`,
          guest: ['ubuntu-24.04', 'debian-12', 'rhel-9.4', 'azurelinux-3'][g % 4]! + (g >= 4 ? `-${g}` : ''),
          template: `gen2-${g}`,
          scenario: `scenario-${String(s + 1).padStart(2, '0')}-${['save-restore', 'checkpoint', 'migrate', 'ring-full'][s % 4]}`,
          seed: h % 1000,
          verdict,
          durationsMs: { real: 20_000 + (h % 5000), emulator: 300 + (h % 200), check: 40 + (h % 30) },
          evidence: { trace: `jobs/j${n}/trace.jsonl`, hostTrace: `jobs/j${n}/host.jsonl`, guestTrace: `jobs/j${n}/guest.jsonl` },
        };
        if (verdict === 'diverge' || verdict === 'hang') {
          const tl = timeline(n);
          job.divergenceClass = verdict === 'hang' ? 'hang' : CLASSES[h % CLASSES.length]!;
          job.message = `h2g tx 4 was saved but never restored (class ${job.divergenceClass})`;
          job.failedProperties = ['every in-flight h2g transaction is saved and restored', 'exactly one completion per transaction'];
          job.firstUnexplained = { file: `jobs/j${n}/trace.jsonl`, line: 17, event: tl[16]! };
          // As the checker words its alternatives (describeEvent in check/replay.ts).
          job.expected = [`host pkt.restore ch=1 dir=h2g tx=4 saveDigest=${'s4'.padEnd(16, '0')}`, 'bench vm.restore.end'];
          job.timeline = tl;
          job.evidence.minimizedScenario = `jobs/j${n}/minimized.yaml`;
        }
        if (verdict === 'error') job.message = 'host unreachable: ssh timed out after 30 s';
        jobs.push(job);
      }
    }
  }
  const start = Date.UTC(2026, 10, 1 + runIndex, 1, 0, 0);
  return {
    version: 1,
    runId: `nightly-${String(runIndex).padStart(3, '0')}`,
    lab: 'perf-lab',
    startedAt: new Date(start).toISOString(),
    finishedAt: new Date(start + 3 * 3600_000).toISOString(),
    jobs,
  };
}

export function benchmarkReportRender(): { reportRender1500Ms: number } {
  const pastRuns: RunRow[] = [];
  const pastCells: CellRow[] = [];
  for (let i = 0; i < 20; i++) {
    const s = syntheticSummary(50, 10, 3, i);
    pastRuns.push(runRowOf(s));
    pastCells.push(...cellRowsOf(s));
  }
  const current = syntheticSummary(50, 10, 3, 20);
  // Timed: what `bench report` does after reading its inputs, trends included.
  const t0 = performance.now();
  const html = renderReport(current, computeTrends(current, pastRuns, pastCells));
  const ms = performance.now() - t0;
  if (html.length === 0) throw new Error('empty report');
  return { reportRender1500Ms: Math.round(ms * 10) / 10 };
}
