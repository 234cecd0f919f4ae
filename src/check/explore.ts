// `bench explore`: the scenario once for every save point and every VM operation there.
//
// A save point is a position between two scheduler steps of the base run: the moment a
// save could start. At each, the run is repeated with a VM operation injected (save +
// restore, a migration to another host, a checkpoint applied at once), and the
// properties are checked online on the whole run. What is in flight at the point (in
// the library queue, in a ring, awaiting completion, held by a driver) is whatever the
// seeded schedule put there, so with the base seed fixed every (point, operation) pair
// is one deterministic schedule.

import { executeScenario, type InjectedOp } from '../scenario/execute.ts';
import type { Scenario } from '../scenario/model.ts';
import { StampingSink } from '../trace/sink.ts';
import { PropertyChecker, type Violation } from './properties.ts';
import type { GapChoices } from '../vmbus/choices.ts';

export const EXPLORE_OPS: readonly InjectedOp[] = ['save-restore', 'migrate', 'checkpoint-apply'];

export interface ExploreFailure {
  at: number;
  op: InjectedOp;
  violations: Violation[];
}

export interface ExploreResult {
  scenario: string;
  seed: number;
  savePoints: number;
  schedules: number;
  /** points where the VM was not running (saved or paused), so nothing was injected */
  skipped: number;
  failures: ExploreFailure[];
  truncated: boolean;
  durationMs: number;
}

/** The number of save points of a scenario under a seed: scheduler steps of the base run + 1. */
export function countSavePoints(s: Scenario, seed: number, choices?: Partial<GapChoices>): number {
  return executeScenario(s, { seed, sink: new StampingSink('emulator', () => {}), choices }).steps + 1;
}

export function explore(
  s: Scenario,
  opts: {
    seed: number;
    maxSchedules?: number | undefined;
    ops?: readonly InjectedOp[] | undefined;
    choices?: Partial<GapChoices> | undefined;
    /** only save points in [from, to) (to split the work across threads) */
    range?: { from: number; to: number } | undefined;
    onProgress?: ((done: number, total: number) => void) | undefined;
  },
): ExploreResult {
  const started = performance.now();
  const ops = opts.ops ?? EXPLORE_OPS;
  const base = executeScenario(s, { seed: opts.seed, sink: new StampingSink('emulator', () => {}), choices: opts.choices });
  const points = base.steps + 1;
  const total = points * ops.length;
  const max = opts.maxSchedules ?? Infinity;
  const failures: ExploreFailure[] = [];
  let schedules = 0;
  let skipped = 0;
  let truncated = false;
  const from = opts.range ? Math.max(0, opts.range.from) : 0;
  const to = opts.range ? Math.min(points, opts.range.to) : points;
  outer: for (let at = from; at < to; at++) {
    for (const op of ops) {
      if (schedules >= max) {
        truncated = true;
        break outer;
      }
      const checker = new PropertyChecker({ maxViolations: 5 });
      const sink = new StampingSink('emulator', (e) => checker.onEvent(e));
      const r = executeScenario(s, { seed: opts.seed, sink, choices: opts.choices, inject: { at, op } });
      if (!r.injected) {
        skipped++;
        continue;
      }
      schedules++;
      const v = checker.finish(r.hang);
      if (v.length > 0) failures.push({ at, op, violations: v });
      if (schedules % 500 === 0) opts.onProgress?.(schedules, total);
    }
  }
  return {
    scenario: s.name,
    seed: opts.seed,
    savePoints: points,
    schedules,
    skipped,
    failures,
    truncated,
    durationMs: Math.round(performance.now() - started),
  };
}
