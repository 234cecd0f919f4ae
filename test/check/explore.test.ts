// Explore's walk must give exactly what running every schedule from the start gives:
// the same schedules, skipped points and failures, violations and their seqs included.
// The plain method is the oracle; the walk is only allowed to be faster.
import { describe, expect, it } from 'vitest';
import { explore, exploreBase, exploreRanges, EXPLORE_OPS } from '../../src/check/explore.ts';
import { chunkRanges } from '../../src/run/commands/explore-parallel.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { ScenarioSchema, toScenario } from '../../src/scenario/model.ts';
import { FAULT_MODES } from '../../src/vmbus/faults.ts';
import { assertWalkGivesPlain, verdicts } from './support/explore-walk.ts';

const suite = await loadScenarioPaths(['bench/scenarios']);
const byName = (n: string) => suite.find((s) => s.name === n)!;

describe('explore: the walk against the plain method', () => {
  it.each(['idle-save-restore', 'inflight-host-transactions', 'checkpoint-apply', 'pause-resume', 'quota-and-deferral'])(
    'gives the same result on bench scenario %s (all operations)',
    (name) => {
      const s = byName(name);
      expect(verdicts(explore(s, { seed: 1 }))).toEqual(verdicts(explore(s, { seed: 1, plain: true })));
    },
  );

  it.each(['save-and-continue', 'pulse'] as const)('gives the same result, and no failure, on checkpoint-apply under runningCheckpoint %s', (runningCheckpoint) => {
    const s = byName('checkpoint-apply');
    const walked = explore(s, { seed: 2, choices: { runningCheckpoint } });
    expect(walked.failures).toEqual([]);
    expect(walked.schedules).toBe(walked.savePoints * EXPLORE_OPS.length - walked.skipped);
    expect(verdicts(walked)).toEqual(verdicts(explore(s, { seed: 2, choices: { runningCheckpoint }, plain: true })));
  });

  it.each(FAULT_MODES)('finds the same failures, violations and seqs included, with the %s fault', (fault) => {
    for (const name of ['idle-save-restore', 'inflight-host-transactions']) {
      const s = byName(name);
      const walked = explore(s, { seed: 1, faults: [fault] });
      expect(verdicts(walked)).toEqual(verdicts(explore(s, { seed: 1, faults: [fault], plain: true })));
    }
  });

  it('stops at --max-schedules where the plain method stops, skipped points included', () => {
    const s = byName('pause-resume');
    for (const max of [1, 7, 100, 300]) {
      expect(verdicts(explore(s, { seed: 1, maxSchedules: max }))).toEqual(verdicts(explore(s, { seed: 1, maxSchedules: max, plain: true })));
    }
  });

  it('gives the same result on a range of save points (a worker thread\'s share)', () => {
    const s = byName('quota-and-deferral');
    const range = { from: 13, to: 41 };
    expect(verdicts(explore(s, { seed: 1, range }))).toEqual(verdicts(explore(s, { seed: 1, range, plain: true })));
  });

  it('serves ranges handed out with gaps in one walk: two threads\' shares put together give the whole result', () => {
    // Two "threads" take every other range, as the shared counter may hand them out: each
    // walk passes the other's points, and skipped points (VM paused) fall in both shares.
    const s = byName('pause-resume');
    const base = exploreBase(s, { seed: 1 });
    const ranges = chunkRanges(base.points, 9);
    for (const maxSchedules of [undefined, 40]) {
      const opts = { seed: 1, maxSchedules };
      const share = (parity: number) => {
        let i = parity - 2;
        return exploreRanges(s, opts, base, () => ((i += 2) < ranges.length ? { index: i, range: ranges[i]! } : null), () => undefined);
      };
      const found = new Map([...share(0), ...share(1)]);
      expect([...found.keys()].sort((a, b) => a - b)).toEqual(ranges.map((_, i) => i));
      for (const [i, r] of found) {
        const alone = explore(s, { ...opts, range: ranges[i], plain: true });
        expect(r, `range ${i}`).toEqual({ schedules: alone.schedules, skipped: alone.skipped, failures: alone.failures, truncated: alone.truncated, ranInFull: r.ranInFull });
      }
    }
  });

  it('property: random scenarios, seeds, operations and faults give the plain result', () => {
    assertWalkGivesPlain({ guestCount: 8, hostCount: 16, maxSteps: 5, quotaAndCheckpoint: true, numRuns: 60 });
  });
});

describe('explore: the walk decides in place what a save leaves unchanged', () => {
  it('runs no schedule in full when every operation hands the run back as it found it', () => {
    // Plain traffic, no holds or deferrals: nothing a pause must finish early.
    const s = toScenario(ScenarioSchema.parse({
      name: 'plain-traffic',
      channels: [{ id: 0, g2hPages: 4, h2gPages: 4 }],
      steps: [{ op: 'guest-send', count: 40, size: 64 }, { op: 'host-send', count: 40, size: 64 }],
    }));
    const r = explore(s, { seed: 1 });
    expect(r.failures).toEqual([]);
    expect(r.schedules).toBe(r.savePoints * EXPLORE_OPS.length);
    expect(r.ranInFull).toBe(0);
  });

  it('runs a schedule in full where a save changes what happens next (held requests complete at the pause)', () => {
    const s = byName('pause-resume');
    const r = explore(s, { seed: 1, ops: ['save-restore'] });
    expect(r.ranInFull).toBeGreaterThan(0);
    expect(r.ranInFull).toBeLessThan(r.schedules);
  });
});
