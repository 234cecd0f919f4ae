// `bench explore` with the C VSP (devices: c): every save point of the scenario, every
// operation, on the C driver, with the same verdicts and the same count of schedules as
// the twins' explore. The walk keys the C VSP's state (devices/sample/c/vsp-key.ts), so,
// as for the twins (explore.test.ts), it must give exactly what running every schedule
// from the start gives.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXPLORE_OPS, explore } from '../../src/check/explore.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { InputError } from '../../src/errors.ts';
import { assertWalkGivesPlain, verdicts } from './support/explore-walk.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const suite = await loadScenarioPaths(['bench/scenarios']);

describe.skipIf(!toolchain)('explore with devices: c', () => {
  it('covers every save point with every operation and finds what the twins\' explore finds', async () => {
    for (const f of ['01-idle-save-restore.yaml', '02-inflight-host-transactions.yaml']) {
      const s = (await loadScenarioPaths([`bench/scenarios/${f}`]))[0]!;
      const twin = explore(s, { seed: 1 });
      const c = explore({ ...s, devices: 'c' }, { seed: 1 });
      expect(c.savePoints, f).toBe(twin.savePoints);
      expect(c.schedules + c.skipped, f).toBe(c.savePoints * EXPLORE_OPS.length);
      expect(c.schedules, f).toBe(twin.schedules);
      expect(c.failures, f).toEqual(twin.failures);
      expect(c.failures, f).toEqual([]);
      // The walk decided them: a save and restore of the C VSP with nothing pending, or
      // with transactions in flight, leaves its key as it was.
      expect(c.ranInFull, f).toBe(0);
    }
  });

  it.each(['idle-save-restore', 'inflight-host-transactions', 'checkpoint-apply', 'quota-and-deferral'])(
    'the walk gives what the plain method gives on bench scenario %s (all operations)',
    async (name) => {
      const s = { ...suite.find((x) => x.name === name)!, devices: 'c' as const };
      expect(verdicts(explore(s, { seed: 1 }))).toEqual(verdicts(explore(s, { seed: 1, plain: true })));
    },
    120_000,
  );

  it('property: random scenarios, seeds, operations and faults give the plain result on the C VSP', () => {
    assertWalkGivesPlain({ devices: 'c', guestCount: 6, hostCount: 10, maxSteps: 4, numRuns: 12 });
  }, 600_000);

  it('a platform bug is caught on the C VSP at the save points where the twins catch it', async () => {
    const s = (await loadScenarioPaths(['bench/scenarios/02-inflight-host-transactions.yaml']))[0]!;
    const opts = { seed: 1, ops: ['save-restore'] as const, faults: ['drop-saved-packet'] as const };
    const twin = explore(s, { ...opts, ops: [...opts.ops], faults: [...opts.faults] });
    const c = explore({ ...s, devices: 'c' }, { ...opts, ops: [...opts.ops], faults: [...opts.faults] });
    expect(twin.failures.length).toBeGreaterThan(0);
    expect(c.failures.map((f) => [f.at, f.op, f.violations.map((v) => v.class)])).toEqual(twin.failures.map((f) => [f.at, f.op, f.violations.map((v) => v.class)]));
    // Found by the walk as the plain method finds it.
    expect(verdicts(c)).toEqual(verdicts(explore({ ...s, devices: 'c' }, { ...opts, ops: [...opts.ops], faults: [...opts.faults], plain: true })));
  });

  it('explores the rescinding scenario on the C VSP too (a VM save at each of its first save points: rescinds, a failing restore, FORCE_NEW_CHANNEL), finding nothing, as the twins', async () => {
    const s = (await loadScenarioPaths(['bench/scenarios/11-rescind-and-reoffer.yaml']))[0]!;
    const opts = { seed: 1, ops: ['save-restore' as const], maxSchedules: 24 };
    const twin = explore(s, opts);
    const c = explore({ ...s, devices: 'c' }, opts);
    expect(c.schedules).toBe(24);
    expect(c.ranInFull).toBe(c.schedules);
    expect(c.failures).toEqual(twin.failures);
    expect(c.failures).toEqual([]);
  });

  it('the model of bench check stays the twins: replay on devices: c is refused as bad input', async () => {
    const s = (await loadScenarioPaths(['bench/scenarios/01-idle-save-restore.yaml']))[0]!;
    expect(() => executeScenario(s, { seed: 1, sink: new MemorySink(), devices: 'c', chooser: { choose: () => null } })).toThrow(InputError);
  });
});
