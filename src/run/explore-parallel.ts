// `bench explore` across worker threads.
//
// Every (save point, operation) schedule is independent of the others, so the save
// points [0, savePoints) are cut into contiguous chunks, several per worker, which the
// pool hands out as workers come free: a slow stretch of the scenario does not hold up
// the rest. Each chunk is one call of `explore` with a `range`, and the chunk results are
// put back together in save-point order, so the merged result is the one a single
// in-process `explore` gives (schedules, skipped, failures), durationMs aside.
//
// With --max-schedules the in-process run stops at the first `max` schedules in save-point
// order. Each chunk then runs at most `max` schedules; while merging, the chunk in which
// the total passes `max` is run again with only the schedules still allowed, so the
// merged counts stop exactly where the in-process run stops.
import { explore, exploreBase, EXPLORE_OPS, type ExploreBase, type ExploreResult } from '../check/explore.ts';
import type { InjectedOp } from '../scenario/execute.ts';
import type { Scenario } from '../scenario/model.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import { WorkerPool } from './worker-pool.ts';
import type { ExploreChunkTask } from './worker-protocol.ts';

/** Chunks per worker: enough to balance uneven chunks, few enough that each chunk's base run stays cheap. */
const CHUNKS_PER_WORKER = 4;

export interface ParallelExploreOptions {
  seed: number;
  ops?: readonly InjectedOp[] | undefined;
  choices?: Partial<GapChoices> | undefined;
  maxSchedules?: number | undefined;
  /** run every schedule from the start (explore.ts, `plain`) */
  plain?: boolean | undefined;
  /** Worker threads; 1 runs in process. */
  workers: number;
  /** An existing pool to use (it is not closed); otherwise one of `workers` threads is made and closed. */
  pool?: WorkerPool | undefined;
  /** Told after each finished chunk: schedules run so far, and the most there can be. */
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export async function exploreParallel(s: Scenario, opts: ParallelExploreOptions): Promise<ExploreResult> {
  const ops = opts.ops ?? EXPLORE_OPS;
  if (opts.workers <= 1 && !opts.pool) {
    return explore(s, { seed: opts.seed, ops, choices: opts.choices, maxSchedules: opts.maxSchedules, plain: opts.plain, onProgress: opts.onProgress });
  }
  const started = performance.now();
  // The threads start (and load their modules) while this one runs the base.
  const pool = opts.pool ?? new WorkerPool({ size: opts.workers });
  let base: ExploreBase;
  try {
    base = exploreBase(s, { seed: opts.seed, choices: opts.choices });
  } catch (e) {
    if (!opts.pool) await pool.close();
    throw e;
  }
  const points = base.points;
  const ranges = chunkRanges(points, pool.size * CHUNKS_PER_WORKER);
  const task = (range: { from: number; to: number }, maxSchedules: number | undefined): ExploreChunkTask => ({
    kind: 'explore-chunk', scenario: s, seed: opts.seed, ops, choices: opts.choices, range, maxSchedules, base, plain: opts.plain,
  });
  let chunkResults: ExploreResult[];
  try {
    let done = 0;
    const total = points * ops.length;
    chunkResults = await Promise.all(
      ranges.map(async (r) => {
        const result = await pool.run(task(r, opts.maxSchedules));
        done += result.schedules;
        opts.onProgress?.(done, total);
        return result;
      }),
    );
  } finally {
    if (!opts.pool) await pool.close();
  }
  const merged = mergeChunks(chunkResults, opts.maxSchedules, (i, remaining) => explore(s, {
    seed: opts.seed, ops, choices: opts.choices, range: ranges[i], maxSchedules: remaining, plain: opts.plain,
  }, base));
  return { ...merged, scenario: s.name, seed: opts.seed, savePoints: points, durationMs: Math.round(performance.now() - started) };
}

/** [0, points) cut into at most `count` contiguous, non-empty ranges of near-equal size. */
export function chunkRanges(points: number, count: number): { from: number; to: number }[] {
  const n = Math.max(1, Math.min(points, count));
  const out: { from: number; to: number }[] = [];
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * points) / n);
    const to = Math.floor(((i + 1) * points) / n);
    if (to > from) out.push({ from, to });
  }
  return out;
}

type Merged = Pick<ExploreResult, 'schedules' | 'skipped' | 'failures' | 'truncated' | 'ranInFull'>;

/**
 * Puts chunk results (in save-point order) together as one in-process run would have
 * counted them. `rerun(i, remaining)` runs chunk i again stopping after `remaining` schedules.
 */
export function mergeChunks(chunks: readonly ExploreResult[], max: number | undefined, rerun: (i: number, remaining: number) => ExploreResult): Merged {
  const out: Merged = { schedules: 0, skipped: 0, failures: [], truncated: false, ranInFull: 0 };
  for (let i = 0; i < chunks.length; i++) {
    let r = chunks[i]!;
    if (max !== undefined) {
      // The in-process loop checks the limit before each operation, so a chunk that starts
      // at the limit is not entered at all.
      if (out.schedules >= max) {
        out.truncated = true;
        break;
      }
      // Crossing (or reaching) the limit inside this chunk: count only up to it.
      if (r.truncated || out.schedules + r.schedules >= max) r = rerun(i, max - out.schedules);
    }
    out.schedules += r.schedules;
    out.skipped += r.skipped;
    out.ranInFull += r.ranInFull;
    out.failures.push(...r.failures);
    if (r.truncated) {
      out.truncated = true;
      break;
    }
  }
  // Chunks are disjoint and in order, so this is already sorted; the sort documents it.
  out.failures.sort((a, b) => a.at - b.at);
  return out;
}
