// What the explore tests share, on the twins (explore.test.ts), the C VSP
// (explore-devices-c.test.ts), the C Linux guest (explore-devices-c-linux.test.ts) and the
// C Windows guest (explore-devices-c-windows.test.ts):
// a result without what may differ between the walk and the plain method, and the
// property that on random scenarios the walk gives exactly what the plain method gives.

import fc from 'fast-check';
import { expect } from 'vitest';
import { EXPLORE_OPS, explore, type ExploreResult } from '../../../src/check/explore.ts';
import { ScenarioSchema, toScenario, type ScenarioInput } from '../../../src/scenario/model.ts';
import { FAULT_MODES, type FaultMode } from '../../../src/vmbus/faults.ts';
import type { GapChoices } from '../../../src/vmbus/choices.ts';
import { trafficStep } from '../../scenario/arbitraries.ts';

/** The result without what may differ: time taken, and how many schedules ran in full. */
export function verdicts(r: ExploreResult): Omit<ExploreResult, 'durationMs' | 'ranInFull'> {
  const { durationMs: _d, ranInFull: _r, ...rest } = r;
  return rest;
}

export interface WalkPropertyLimits {
  /** the devices the scenarios run on (absent: the twins) */
  devices?: 'c' | 'c-linux' | undefined;
  /** the most messages one guest-send or host-send step sends */
  guestCount: number;
  hostCount: number;
  /** the most traffic steps a scenario has (pause and resume besides) */
  maxSteps: number;
  /** also vary the channel's quota (0 or 1) and the runningCheckpoint choice */
  quotaAndCheckpoint?: boolean | undefined;
  numRuns: number;
}

/**
 * Property: random one-channel scenarios (traffic, a pause and its resume), seeds,
 * operations and faults give the plain method's result from the walk.
 */
export function assertWalkGivesPlain(l: WalkPropertyLimits): void {
  const step = fc.oneof(
    trafficStep({ guestCount: l.guestCount, hostCount: l.hostCount, maxSize: 2000, hold: 4 }),
    fc.constant({ op: 'pause' as const }),
    fc.constant({ op: 'resume' as const }),
  );
  fc.assert(
    fc.property(
      fc.array(step, { minLength: 1, maxLength: l.maxSteps }),
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      fc.subarray([...EXPLORE_OPS], { minLength: 1 }),
      fc.option(fc.constantFrom<FaultMode>(...FAULT_MODES), { nil: undefined }),
      fc.integer({ min: 0, max: l.quotaAndCheckpoint ? 1 : 0 }),
      fc.constantFrom<GapChoices['runningCheckpoint']>(...(l.quotaAndCheckpoint ? (['save-and-continue', 'pulse'] as const) : (['save-and-continue'] as const))),
      (steps, pages, seed, ops, fault, quota, runningCheckpoint) => {
        // A pause without a resume (or the other way round) is not a valid scenario.
        const balanced: ScenarioInput['steps'] = steps.filter((st) => st.op !== 'pause' && st.op !== 'resume');
        if (steps.some((st) => st.op === 'pause')) balanced.push({ op: 'pause' }, { op: 'run', ms: 1 }, { op: 'resume' });
        if (balanced.length === 0) balanced.push({ op: 'run', ms: 1 });
        const input: ScenarioInput = {
          name: 'prop',
          ...(l.devices ? { devices: l.devices } : {}),
          channels: [{ id: 0, g2hPages: pages, h2gPages: pages, ...(l.quotaAndCheckpoint ? { quota } : {}) }],
          steps: balanced,
        };
        const s = toScenario(ScenarioSchema.parse(input));
        const faults = fault ? [fault] : undefined;
        const choices = l.quotaAndCheckpoint ? { runningCheckpoint } : undefined;
        expect(verdicts(explore(s, { seed, ops, faults, choices }))).toEqual(verdicts(explore(s, { seed, ops, faults, choices, plain: true })));
      },
    ),
    { numRuns: l.numRuns },
  );
}
