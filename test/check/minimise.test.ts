// Minimising a diverging scenario is capped by time and tells its progress: on a large
// trace it took a minute and more in silence (issue 16). Stopping early keeps a scenario
// that still shows the divergence, only a larger one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { findReproduction, minimise, reproduces, type MinimiseProgress } from '../../src/check/minimise.ts';
import { loadScenarioFile } from '../../src/scenario/loader.ts';

const scenario = await loadScenarioFile('bench/scenarios/04-repeated-save-restore.yaml');

afterEach(() => {
  vi.restoreAllMocks();
});

describe('minimise', () => {
  it('stops at its deadline with a scenario that still reproduces, and says it stopped', () => {
    const repro = findReproduction(scenario, 'duplicated', ['restore-twice'])!;
    expect(repro).not.toBeNull();
    const full = minimise(scenario, repro);
    expect(full.timedOut).toBe(false);
    const cut = minimise(scenario, repro, { deadline: performance.now() - 1 });
    expect(cut.timedOut).toBe(true);
    expect(cut.tries).toBeLessThanOrEqual(1);
    expect(reproduces(cut.scenario, repro)).toBe(true);
    expect(cut.scenario.steps.length).toBeGreaterThanOrEqual(full.scenario.steps.length);
  });

  it('tells its progress about once a second of work', () => {
    const repro = findReproduction(scenario, 'duplicated', ['restore-twice'])!;
    // Each look at the clock is 400 ms later: progress every third try or so.
    let t = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => (t += 400));
    const seen: MinimiseProgress[] = [];
    const r = minimise(scenario, repro, { onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(r.tries);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.tries).toBeGreaterThan(seen[i - 1]!.tries);
    expect(seen.at(-1)!.steps).toBeGreaterThanOrEqual(r.scenario.steps.length);
  });

  it('finds no reproduction once past its deadline', () => {
    expect(findReproduction(scenario, 'duplicated', ['restore-twice'], undefined, performance.now() - 1)).toBeNull();
  });
});
