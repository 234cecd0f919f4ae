// `bench explore` with the C VSP (devices: c): every save point of the scenario, every
// operation, on the C driver, with the same verdicts and the same count of schedules as
// the twins' explore. The walk keys the C VSP's state (the sample's keyDriver), so not
// every schedule has to run from the start.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXPLORE_OPS, explore } from '../../src/check/explore.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { InputError } from '../../src/errors.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe.skipIf(!toolchain)('explore with devices: c', () => {
  it('covers every save point with every operation and finds what the twins\' explore finds', async () => {
    for (const f of ['01-idle-save-restore.yaml', '02-inflight-host-transactions.yaml']) {
      const s = (await loadScenarioPaths([`bench/scenarios/${f}`]))[0]!;
      const twin = explore(s, { seed: 1 });
      const c = explore({ ...s, devices: 'c' }, { seed: 1 });
      expect(c.savePoints, f).toBe(twin.savePoints);
      expect(c.schedules + c.skipped, f).toBe(c.savePoints * EXPLORE_OPS.length);
      expect(c.schedules, f).toBe(twin.schedules);
      // The walk decided some schedules on the C VSP's key; the rest ran from the start.
      expect(c.ranInFull, f).toBeLessThan(c.schedules);
      expect(c.failures, f).toEqual(twin.failures);
      expect(c.failures, f).toEqual([]);
    }
  });

  it('a platform bug is caught on the C VSP at the save points where the twins catch it', async () => {
    const s = (await loadScenarioPaths(['bench/scenarios/02-inflight-host-transactions.yaml']))[0]!;
    const opts = { seed: 1, ops: ['save-restore'] as const, faults: ['drop-saved-packet'] as const };
    const twin = explore(s, { ...opts, ops: [...opts.ops], faults: [...opts.faults] });
    const c = explore({ ...s, devices: 'c' }, { ...opts, ops: [...opts.ops], faults: [...opts.faults] });
    expect(twin.failures.length).toBeGreaterThan(0);
    expect(c.failures.map((f) => [f.at, f.op, f.violations.map((v) => v.class)])).toEqual(twin.failures.map((f) => [f.at, f.op, f.violations.map((v) => v.class)]));
  });

  it('the model of bench check stays the twins: replay on devices: c is refused as bad input', async () => {
    const s = (await loadScenarioPaths(['bench/scenarios/01-idle-save-restore.yaml']))[0]!;
    expect(() => executeScenario(s, { seed: 1, sink: new MemorySink(), devices: 'c', chooser: { choose: () => null } })).toThrow(InputError);
  });
});
