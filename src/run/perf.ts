// `bench perf`: the performance figures of the issues, measured here and printed as
// numbers (never asserted in tests). Each figure is the best of a few repeats, because
// on a shared 2-core machine the slowest repeat measures the neighbours.

import { RingMemory, OutgoingRing, IncomingRing } from '../vmbus/ring.ts';
import { PacketType, ringBytes } from '../vmbus/ring-layout.ts';
import { executeScenario } from '../scenario/execute.ts';
import { toScenario, ScenarioSchema, type ScenarioInput } from '../scenario/model.ts';
import { StampingSink } from '../trace/sink.ts';
import { explore } from '../check/explore.ts';

function best<T>(repeats: number, f: () => T, score: (t: T) => number): number {
  let top = -Infinity;
  for (let i = 0; i < repeats; i++) top = Math.max(top, score(f()));
  return top;
}

/** Write + read of `size`-byte packets in one thread, committing every `batch` packets. */
export function ringPacketsPerSec(size: number, batch: number, packets: number): number {
  const pages = 16;
  const sab = new SharedArrayBuffer(ringBytes(pages));
  const mem = new RingMemory(sab, 0, pages);
  mem.initialize();
  const out = new OutgoingRing(mem);
  const inc = new IncomingRing(mem);
  const payload = new Uint8Array(size).fill(0x5a);
  const b = Math.max(1, Math.min(batch, Math.floor((pages * 4096 - 8) / (size + 24))));
  const t0 = performance.now();
  for (let i = 0; i < packets; i += b) {
    for (let j = 0; j < b; j++) out.tryWrite(PacketType.dataInBand, 1, i + j, payload);
    out.commit();
    for (let j = 0; j < b; j++) {
      const v = inc.peek()!;
      inc.advance(v);
    }
    inc.commit();
  }
  return packets / ((performance.now() - t0) / 1000);
}

const quiet = (): StampingSink => new StampingSink('emulator', () => {});

function scenario(input: ScenarioInput) {
  return toScenario(ScenarioSchema.parse(input));
}

/** Guest request -> VSP (inline) -> completion, through the whole KMCL model, per second. */
export function roundTripsPerSec(n: number): number {
  const s = scenario({ name: 'perf-round-trips', channels: [{ id: 0, g2hPages: 64, h2gPages: 64 }], steps: [{ op: 'guest-send', count: n, size: 64 }] });
  const t0 = performance.now();
  executeScenario(s, { seed: 1, sink: quiet() });
  return n / ((performance.now() - t0) / 1000);
}

/** Save + restore of a VM with `n` host transactions in flight (half in the ring, half queued), in ms. */
export function saveRestoreMs(n: number): number {
  const steps: ScenarioInput['steps'] = [{ op: 'host-send', count: n, size: 64, hold: 1000 }, { op: 'run', ms: 1 }];
  const base = scenario({ name: 'perf-save', saveBufferSize: 1 << 20, channels: [{ id: 0, h2gPages: 12 }], steps });
  const withSave = scenario({ name: 'perf-save', saveBufferSize: 1 << 20, channels: [{ id: 0, h2gPages: 12 }], steps: [...steps, { op: 'save' }, { op: 'restore' }] });
  const time = (sc: typeof base): number => {
    const t0 = performance.now();
    executeScenario(sc, { seed: 1, sink: quiet() });
    return performance.now() - t0;
  };
  let bestDelta = Infinity;
  for (let i = 0; i < 7; i++) bestDelta = Math.min(bestDelta, time(withSave) - time(base));
  return Math.max(0, bestDelta);
}

/** Explore every save point of a scenario with `n` transactions (save + restore at each). */
export function exploreFigures(n: number): { exploreSchedules: number; exploreMs: number; exploreSchedulesPerSec: number } {
  const s = scenario({
    name: 'perf-explore',
    channels: [{ id: 0, g2hPages: 16, h2gPages: 16 }],
    steps: [
      { op: 'guest-send', count: n / 2, size: 64 },
      { op: 'host-send', count: n / 2, size: 64 },
    ],
  });
  const r = explore(s, { seed: 1, ops: ['save-restore'] });
  return { exploreSchedules: r.schedules, exploreMs: r.durationMs, exploreSchedulesPerSec: Math.round(r.schedules / (r.durationMs / 1000)) };
}

export async function measureAll(progress: (what: string) => void): Promise<Record<string, number>> {
  const fig: Record<string, number> = {};
  progress('ring');
  fig.ring64PacketsPerSec = Math.round(best(3, () => ringPacketsPerSec(64, 16, 4_000_000), (x) => x));
  fig.ring64UnbatchedPacketsPerSec = Math.round(best(3, () => ringPacketsPerSec(64, 1, 2_000_000), (x) => x));
  fig.ring256PacketsPerSec = Math.round(best(3, () => ringPacketsPerSec(256, 16, 2_000_000), (x) => x));
  fig.ring4KiBPacketsPerSec = Math.round(best(3, () => ringPacketsPerSec(4096, 16, 400_000), (x) => x));
  progress('round trips');
  fig.roundTripsPerSec = Math.round(best(3, () => roundTripsPerSec(200_000), (x) => x));
  progress('save + restore');
  fig.saveRestore1000InFlightMs = Math.round(saveRestoreMs(1000) * 100) / 100;
  progress('explore');
  Object.assign(fig, exploreFigures(1000));
  try {
    progress('trace read (10 million events)');
    const { benchmarkTraceRead } = await import('../trace/perf.ts');
    Object.assign(fig, await benchmarkTraceRead());
  } catch (e) {
    progress(`trace read benchmark unavailable: ${(e as Error).message}`);
  }
  try {
    progress('report render');
    const { benchmarkReportRender } = await import('../report/perf.ts');
    Object.assign(fig, await benchmarkReportRender());
  } catch (e) {
    progress(`report render benchmark unavailable: ${(e as Error).message}`);
  }
  return fig;
}
