// Parallel explore must give exactly what one in-process explore gives: the same
// schedules, skipped points and failures, and with --max-schedules the same stopping point.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explore, type ExploreResult } from '../../../src/check/explore.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import type { Scenario } from '../../../src/scenario/model.ts';
import { chunkRanges, exploreParallel, mergeChunks } from '../../../src/run/commands/explore-parallel.ts';
import { WorkerPool } from '../../../src/run/workers/worker-pool.ts';

let pool: WorkerPool;
let pauseResume: Scenario;
beforeAll(async () => {
  pool = new WorkerPool({ size: 2 });
  // Twelve of its save points fall where the VM is paused: explore skips those.
  pauseResume = await loadScenarioFile('bench/scenarios/07-pause-resume.yaml');
});
afterAll(() => pool.close());

const withoutTime = ({ durationMs: _, ...rest }: ExploreResult) => rest;

describe('exploreParallel', () => {
  it('gives the in-process result (schedules, skipped, failures) on a bench scenario', async () => {
    const local = explore(pauseResume, { seed: 4 });
    expect(local.skipped).toBeGreaterThan(0);
    const progress: number[] = [];
    const parallel = await exploreParallel(pauseResume, { seed: 4, workers: 2, pool, onProgress: (done) => progress.push(done) });
    expect(withoutTime(parallel)).toEqual(withoutTime(local));
    expect(progress.at(-1)).toBe(local.schedules);
  });

  it('runs the worker threads under the documented-gap choices it is given (runningCheckpoint)', async () => {
    // A chunk dropped from a taken checkpoint's save fails where the save is restored at
    // once (pulse), not where the channel goes on from it (save-and-continue): the two
    // options give different failures, each the in-process one.
    const inflight = await loadScenarioFile('bench/scenarios/02-inflight-host-transactions.yaml');
    const failing = new Map<string, number>();
    for (const runningCheckpoint of ['save-and-continue', 'pulse'] as const) {
      const opts = { seed: 1, ops: ['checkpoint'] as const, faults: ['drop-saved-packet'] as const, choices: { runningCheckpoint } };
      const local = explore(inflight, opts);
      expect(withoutTime(await exploreParallel(inflight, { ...opts, workers: 2, pool })), runningCheckpoint).toEqual(withoutTime(local));
      failing.set(runningCheckpoint, local.failures.length);
    }
    expect(failing.get('pulse')).toBeGreaterThan(failing.get('save-and-continue')!);
  });

  it('stops at --max-schedules exactly where the in-process run stops', async () => {
    // With seed 2 and save-restore alone, points 6..9 are skipped (VM paused) and 227 run;
    // the limits below stop just before, at and after those points, chunk edges and the end.
    const ops = ['save-restore'] as const;
    for (const max of [1, 6, 7, 28, 29, 100, 226, 227, 1000]) {
      const local = explore(pauseResume, { seed: 2, ops, maxSchedules: max });
      const parallel = await exploreParallel(pauseResume, { seed: 2, ops, maxSchedules: max, workers: 2, pool });
      expect(withoutTime(parallel), `max ${max}`).toEqual(withoutTime(local));
    }
  });

  it('runs in process with one worker', async () => {
    const idle = await loadScenarioFile('bench/scenarios/01-idle-save-restore.yaml');
    const r = await exploreParallel(idle, { seed: 1, workers: 1 });
    expect(withoutTime(r)).toEqual(withoutTime(explore(idle, { seed: 1 })));
  });
});

describe('chunkRanges', () => {
  it('covers every save point once, in order, in non-empty chunks', () => {
    for (const [points, count] of [[1, 8], [7, 8], [8, 8], [231, 8], [1000, 3]] as const) {
      const rs = chunkRanges(points, count);
      expect(rs.length).toBe(Math.min(points, count));
      expect(rs[0]!.from).toBe(0);
      expect(rs.at(-1)!.to).toBe(points);
      for (let i = 1; i < rs.length; i++) expect(rs[i]!.from).toBe(rs[i - 1]!.to);
      for (const r of rs) expect(r.to).toBeGreaterThan(r.from);
    }
  });
});

describe('mergeChunks', () => {
  it('keeps failures in save-point order across chunks', () => {
    const chunk = (at: number[], schedules: number): ExploreResult => ({
      scenario: 's', seed: 1, savePoints: 10, schedules, skipped: 0, truncated: false, ranInFull: 0, durationMs: 0,
      failures: at.map((a) => ({ at: a, op: 'migrate', violations: [] })),
    });
    const m = mergeChunks([chunk([0, 2], 9), chunk([3], 9), chunk([], 6), chunk([8, 9], 6)], undefined, () => {
      throw new Error('no rerun without a limit');
    });
    expect(m.failures.map((f) => f.at)).toEqual([0, 2, 3, 8, 9]);
    expect(m.schedules).toBe(30);
    expect(m.truncated).toBe(false);
  });
});
