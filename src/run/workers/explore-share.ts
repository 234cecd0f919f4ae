// A worker's share of a parallel `bench explore` (commands/explore-parallel.ts hands the
// shares out): the ranges of save points a thread takes, one at a time, from a counter in
// shared memory. It lives with the workers because a worker thread runs it (worker-tasks.ts),
// and the workers must not import the commands that start them.
import { exploreRanges, type RangeClaim, type RangeResult } from '../../check/explore.ts';
import type { ExploreShareTask } from './worker-protocol.ts';

/** The shared counters' slots (an Int32Array over a SharedArrayBuffer). */
export const NEXT_RANGE = 0;
export const DECIDED = 1;

/**
 * One thread's share of a parallel explore: every range it takes from the shared counter,
 * as [range index, result] pairs. `passed` is called once per schedule decided.
 */
export function exploreShare(task: ExploreShareTask, passed?: () => void): [number, RangeResult][] {
  const counters = new Int32Array(task.shared);
  passed ??= () => void Atomics.add(counters, DECIDED, 1);
  const claim: RangeClaim = () => {
    const index = Atomics.add(counters, NEXT_RANGE, 1);
    return index < task.ranges.length ? { index, range: task.ranges[index]! } : null;
  };
  const opts = { seed: task.seed, ops: task.ops, choices: task.choices, faults: task.faults, maxSchedules: task.maxSchedules, plain: task.plain };
  return [...exploreRanges(task.scenario, opts, task.base, claim, passed)];
}
