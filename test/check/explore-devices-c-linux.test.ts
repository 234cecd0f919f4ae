// `bench explore` with the C Linux guest driver as the VM's guest (devices: c-linux): the
// walk keys the guest as its image (devices/sample/c/guest-linux-key.ts) beside the C
// VSP, so it decides schedules without running them, and must give exactly what running
// every schedule from the start gives.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXPLORE_OPS, explore, type ExploreResult } from '../../src/check/explore.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const suite = await loadScenarioPaths(['bench/scenarios']);

/** The result without what may differ: time taken, and how many schedules ran in full. */
function verdicts(r: ExploreResult): Omit<ExploreResult, 'durationMs' | 'ranInFull'> {
  const { durationMs: _d, ranInFull: _r, ...rest } = r;
  return rest;
}

describe.skipIf(!toolchain)('explore with devices: c-linux', () => {
  it.each(['idle-save-restore', 'inflight-host-transactions', 'checkpoint-apply', 'quota-and-deferral'])(
    'the walk gives what the plain method gives on bench scenario %s (all operations), and decides schedules itself',
    (name) => {
      const s = { ...suite.find((x) => x.name === name)!, devices: 'c-linux' as const };
      const walked = explore(s, { seed: 1 });
      const plain = explore(s, { seed: 1, plain: true });
      expect(verdicts(walked)).toEqual(verdicts(plain));
      expect(walked.schedules + walked.skipped).toBe(walked.savePoints * EXPLORE_OPS.length);
      expect(plain.ranInFull).toBe(plain.schedules);
      expect(walked.ranInFull).toBeLessThan(walked.schedules);
    },
    300_000,
  );

  it('a save and restore of the guest with nothing pending, or with transactions in flight, leaves its key as it was', async () => {
    for (const f of ['01-idle-save-restore.yaml', '02-inflight-host-transactions.yaml']) {
      const s = { ...(await loadScenarioPaths([`bench/scenarios/${f}`]))[0]!, devices: 'c-linux' as const };
      const r = explore(s, { seed: 1 });
      expect(r.failures, f).toEqual([]);
      expect(r.ranInFull, f).toBe(0);
    }
  }, 300_000);
});
