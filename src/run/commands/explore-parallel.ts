// `bench explore` across threads.
//
// Every (save point, operation) schedule is independent of the others, so the save
// points [0, savePoints) are cut into contiguous ranges that this thread and the worker
// threads take, one at a time, from a counter in shared memory as each comes free: a
// slow stretch of the scenario does not hold up the rest, and this thread, already
// started and warm from the base run, does not wait for the workers to start. The counter
// hands ranges out in increasing order, so each thread serves all of its ranges in one
// walk of the base run (check/explore.ts, exploreRanges) rather than one walk per range.
// Each range counts on its own, and the range results are put back together in
// save-point order, so the merged result is the one a single in-process `explore` gives
// (schedules, skipped, failures), durationMs aside.
//
// With --max-schedules the in-process run stops at the first `max` schedules in save-point
// order. Each range then runs at most `max` schedules; while merging, the range in which
// the total passes `max` is run again with only the schedules still allowed, so the
// merged counts stop exactly where the in-process run stops.
import { explore, exploreBase, EXPLORE_OPS, PROGRESS_EVERY, type ExploreBase, type ExploreResult, type PointRange, type RangeResult } from '../../check/explore.ts';
import { InfraError } from '../../errors.ts';
import type { InjectedOp } from '../../scenario/execute.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import { WorkerPool } from '../workers/worker-pool.ts';
import { DECIDED, exploreShare } from '../workers/explore-share.ts';
import type { ExploreShareTask } from '../workers/worker-protocol.ts';
import type { FaultMode } from '../../vmbus/faults.ts';

/**
 * Ranges per thread: enough that the threads finish close together however uneven the
 * scenario, few enough that handing them out costs nothing (a thread passes the points of
 * ranges it was not given at the base run's speed).
 */
const RANGES_PER_THREAD = 16;


export interface ParallelExploreOptions {
  seed: number;
  ops?: readonly InjectedOp[] | undefined;
  choices?: Partial<GapChoices> | undefined;
  maxSchedules?: number | undefined;
  /** run every schedule from the start (explore.ts, `plain`) */
  plain?: boolean | undefined;
  /** platform bugs to imitate in every schedule (vmbus/faults.ts) */
  faults?: readonly FaultMode[] | undefined;
  /** Threads exploring, this one included; 1 runs in process only. */
  workers: number;
  /** An existing pool for the other threads (it is not closed); otherwise one is made and closed. */
  pool?: WorkerPool | undefined;
  /** Told as schedules are decided: how many so far, and the most there can be. */
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export async function exploreParallel(s: Scenario, opts: ParallelExploreOptions): Promise<ExploreResult> {
  const ops = opts.ops ?? EXPLORE_OPS;
  if (opts.workers <= 1) {
    return explore(s, { seed: opts.seed, ops, choices: opts.choices, faults: opts.faults, maxSchedules: opts.maxSchedules, plain: opts.plain, onProgress: opts.onProgress });
  }
  const started = performance.now();
  const pool = opts.pool ?? new WorkerPool({ size: opts.workers - 1 });
  // The workers start while this thread runs the base.
  pool.start();
  let base: ExploreBase;
  try {
    base = exploreBase(s, { seed: opts.seed, choices: opts.choices, faults: opts.faults });
  } catch (e) {
    if (!opts.pool) await pool.close();
    throw e;
  }
  const points = base.points;
  const ranges = chunkRanges(points, opts.workers * RANGES_PER_THREAD);
  const shared = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  const task: ExploreShareTask = {
    kind: 'explore-share', scenario: s, seed: opts.seed, ops, choices: opts.choices, faults: opts.faults, ranges, shared: shared.buffer as SharedArrayBuffer,
    maxSchedules: opts.maxSchedules, base, plain: opts.plain,
  };
  const total = points * ops.length;
  const found = new Map<number, RangeResult>();
  try {
    // The workers start; this thread explores meanwhile, and they join in as they come up.
    const theirs = Array.from({ length: opts.workers - 1 }, () => pool.run(task));
    // A failure here must not leave their rejections unheard (they are awaited below).
    for (const t of theirs) t.catch(() => undefined);
    let reported = 0;
    const mine = exploreShare(task, () => {
      const done = Atomics.add(shared, DECIDED, 1) + 1;
      if (done - reported >= PROGRESS_EVERY) {
        reported = done;
        opts.onProgress?.(done, total);
      }
    });
    for (const [i, r] of mine) found.set(i, r);
    for (const list of await Promise.all(theirs)) for (const [i, r] of list) found.set(i, r);
  } finally {
    if (!opts.pool) await pool.close();
  }
  const chunks = ranges.map((r, i) => {
    const got = found.get(i);
    if (!got) throw new InfraError(`explore of ${s.name}: no thread reported save points ${r.from}..${r.to - 1}`);
    return got;
  });
  const merged = mergeChunks(chunks, opts.maxSchedules, (i, remaining) => explore(s, {
    seed: opts.seed, ops, choices: opts.choices, faults: opts.faults, range: ranges[i], maxSchedules: remaining, plain: opts.plain,
  }, base));
  opts.onProgress?.(merged.schedules, total);
  return { ...merged, scenario: s.name, seed: opts.seed, savePoints: points, durationMs: Math.round(performance.now() - started) };
}

/** [0, points) cut into at most `count` contiguous, non-empty ranges of near-equal size. */
export function chunkRanges(points: number, count: number): PointRange[] {
  const n = Math.max(1, Math.min(points, count));
  const out: PointRange[] = [];
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * points) / n);
    const to = Math.floor(((i + 1) * points) / n);
    if (to > from) out.push({ from, to });
  }
  return out;
}

/**
 * Puts chunk results (in save-point order) together as one in-process run would have
 * counted them. `rerun(i, remaining)` runs chunk i again stopping after `remaining` schedules.
 */
export function mergeChunks(chunks: readonly RangeResult[], max: number | undefined, rerun: (i: number, remaining: number) => RangeResult): RangeResult {
  const out: RangeResult = { schedules: 0, skipped: 0, failures: [], truncated: false, ranInFull: 0 };
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
