// bench check on a trace whose `settle` ended before everything was done, as a real lab
// job's does: the job's settle is its drivers quiet for `settleQuietMs` (2 s by default),
// and a VSP that holds each request 10 s is quiet far longer than that with requests
// outstanding. The job cuts the files at the settle's end (a bench.mark, as after a send
// given up: src/run/real/real-job.ts), and the replay's settle runs only as far as the
// trace shows before that cut; the rest is carried into the next steps (replay.ts,
// SettleCuts). These traces are the emulator's, of the same scenario with the settle
// made that short (`run` for 2 s: on the emulator's clock nothing happens in it, the VSP's
// holds ending 10 s after it took the requests), with the two cuts a real job writes put
// where it writes them. They are checked against the scenario with its `settle`.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeTraces } from '../../src/run/real/real-job.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { checkTrace, type CheckResult } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../src/scenario/model.ts';
import { stalledOn } from './support/send-timeout-scenario.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const stalled = stalledOn();
/** The same steps with the first settle over after 2 s, as a real job's with the default settleQuietMs. */
const shortSettle: Scenario = toScenario({ ...stalled, steps: stalled.steps.map((s, i) => (i === 1 ? { op: 'run', ms: 2_000 } : s)) } as never);

function check(s: Scenario, events: readonly TraceEvent[]): CheckResult {
  const source = new ArraySource(events.map((event, i) => ({ event, file: 'short-settle.jsonl', line: i + 1 })));
  return checkTrace(s, source);
}
const renumber = (events: readonly TraceEvent[]): TraceEvent[] => events.map((e, i) => ({ ...e, seq: i + 1 }));
const mark = (): TraceEvent => ({ v: 1, seq: 0, src: 'hyperv', side: 'bench', ev: 'bench.mark' }) as TraceEvent;
const isPacket = (e: TraceEvent) => e.side !== 'bench' && e.ev.startsWith('pkt.');

/**
 * The trace as a real job's files make it: the host's and the guest's events each in a
 * file of its own with its own seq, the bench's events in a third with `at` (each file's
 * last seq before it), merged as the job merges them (mergeTraces), so that host against
 * guest is ordered by the bench's events and cuts only.
 */
async function asJobFiles(events: readonly TraceEvent[]): Promise<TraceEvent[]> {
  const dir = mkdtempSync(join(tmpdir(), 'settle-cut-'));
  const files = { host: [] as string[], guest: [] as string[], bench: [] as string[] };
  const seq = { host: 0, guest: 0, bench: 0 };
  for (const e of events) {
    const side = e.side as 'host' | 'guest' | 'bench';
    const line = { ...e, seq: ++seq[side], src: 'hyperv' } as Record<string, unknown>;
    if (side === 'bench') line.at = { host: seq.host, guest: seq.guest };
    files[side].push(JSON.stringify(line));
  }
  for (const side of ['host', 'guest', 'bench'] as const) writeFileSync(join(dir, side), `${files[side].join('\n')}\n`);
  const out = await mergeTraces(join(dir, 'bench'), join(dir, 'host'), join(dir, 'guest'), join(dir, 'merged'));
  return readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as TraceEvent);
}

describe.skipIf(!toolchain)('bench check on a trace whose settle ended with the VSP still holding requests', () => {
  /** the short settle's trace, with no cut */
  let run: TraceEvent[] = [];
  let giveUp = -1;
  /** as a real job writes it: a cut after the give-up, and one at the settle's end */
  let cut: TraceEvent[] = [];
  beforeAll(() => {
    const sink = new MemorySink();
    expect(executeScenario(shortSettle, { seed: 1, sink }).hang).toBeNull();
    run = sink.events as TraceEvent[];
    giveUp = run.findIndex((e) => e.ev === 'pkt.timeout');
    cut = renumber([...run.slice(0, giveUp + 1), mark(), mark(), ...run.slice(giveUp + 1)]);
  }, 120_000);

  it('the trace is one a settle to quiescence cannot write: the next step\'s sends come before the held requests complete', () => {
    const next = run.findIndex((e, i) => i > giveUp && e.ev === 'pkt.send' && e.side === 'guest');
    const lastComplete = run.findLastIndex((e) => e.ev === 'pkt.complete' && e.side === 'host' && (e as { len?: number }).len !== undefined && e.tx <= 18);
    expect(next).toBeGreaterThan(giveUp);
    expect(lastComplete).toBeGreaterThan(next);
  });

  it('merged from its files as a real job merges them, with both cuts, it passes against the scenario\'s settle', async () => {
    const r = check(stalled, await asJobFiles(cut));
    expect(r, JSON.stringify(r).slice(0, 600)).toMatchObject({ verdict: 'pass' });
  });

  it('whichever packet event the trace loses after the give-up, the short settle does not hide it: each diverges', () => {
    const at = cut.findIndex((e) => e.ev === 'pkt.timeout');
    const failed: number[] = [];
    let tried = 0;
    for (let i = at + 3; i < cut.length; i++) {
      if (!isPacket(cut[i]!)) continue;
      tried++;
      const r = check(stalled, renumber(cut.filter((_, j) => j !== i)));
      if (r.verdict !== 'diverge') failed.push(i);
    }
    expect(tried).toBeGreaterThan(40);
    expect(failed.map((i) => JSON.stringify(cut[i]))).toEqual([]);
  });

  it('a host completion lost after the short settle is named: lost', () => {
    const i = cut.findLastIndex((e) => e.ev === 'pkt.complete' && e.side === 'host');
    const r = check(stalled, renumber(cut.filter((_, j) => j !== i)));
    expect(r).toMatchObject({ verdict: 'diverge', class: 'lost' });
  });
});

describe('a settle\'s cut followed by a VM operation', () => {
  // The twins, 8 requests the VSP takes 4 at a time and holds 10 s, then a checkpoint.
  const s: Scenario = toScenario(ScenarioSchema.parse({
    name: 'settle-then-checkpoint',
    channels: [{ id: 0, g2hPages: 1, h2gPages: 1, quota: 4 }],
    steps: [
      { op: 'guest-send', count: 8, size: 256, mode: 'hold', hold: 10_000 },
      { op: 'settle' },
      { op: 'checkpoint', name: 'c1' },
      { op: 'settle' },
    ],
  }));

  it('what the drivers wrote between the cut and the operation\'s begin is the settle\'s to explain (the operation writes its bench event first): passes; the same with a host read lost diverges', async () => {
    const sink = new MemorySink();
    const short = toScenario({ ...s, steps: s.steps.map((x, i) => (i === 1 ? { op: 'run', ms: 2_000 } : x)) } as never);
    expect(executeScenario(short, { seed: 1, sink }).hang).toBeNull();
    const run = sink.events as TraceEvent[];
    const begin = run.findIndex((e) => e.ev === 'vm.checkpoint.begin');
    const reads = run.slice(0, begin).filter((e) => e.side === 'host' && e.ev === 'pkt.recv');
    expect(reads).toHaveLength(4);
    // The job's settle ended (its cut) before the host had read any request: the host's
    // reads lie between the cut and the checkpoint's begin.
    const trace = [...run.slice(0, begin).filter((e) => !reads.includes(e)), mark(), ...reads, ...run.slice(begin)];
    const merged = await asJobFiles(renumber(trace));
    const cutAt = merged.findIndex((e) => e.ev === 'bench.mark');
    expect(merged.findIndex((e) => e.side === 'host' && e.ev === 'pkt.recv')).toBeGreaterThan(cutAt);
    const r = check(s, merged);
    expect(r, JSON.stringify(r).slice(0, 600)).toMatchObject({ verdict: 'pass' });
    const lost = merged.filter((e) => !(e.side === 'host' && e.ev === 'pkt.recv' && e.tx === 3));
    expect(check(s, renumber(lost))).toMatchObject({ verdict: 'diverge' });
  });
});
