// `bench explore` with the C Windows guest driver as the VM's guest (devices: c-windows):
// the walk keys the guest as its image (devices/sample/c/guest-windows-key.ts) beside the
// C VSP, so it decides schedules without running them, and must give exactly what running
// every schedule from the start gives, a planted platform bug included.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXPLORE_OPS, explore } from '../../src/check/explore.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { verdicts } from './support/explore-walk.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const suite = await loadScenarioPaths(['bench/scenarios']);

describe.skipIf(!toolchain)('explore with devices: c-windows', () => {
  it.each(['idle-save-restore', 'checkpoint-apply'])(
    'the walk gives what the plain method gives on bench scenario %s (all operations), deciding every schedule itself',
    (name) => {
      const s = { ...suite.find((x) => x.name === name)!, devices: 'c-windows' as const };
      const walked = explore(s, { seed: 1 });
      const plain = explore(s, { seed: 1, plain: true });
      expect(verdicts(walked)).toEqual(verdicts(plain));
      expect(walked.failures).toEqual([]);
      expect(walked.schedules + walked.skipped).toBe(walked.savePoints * EXPLORE_OPS.length);
      expect(plain.ranInFull).toBe(plain.schedules);
      expect(walked.ranInFull).toBe(0);
    },
    300_000,
  );

  it.each(['many-channels', 'rescind-and-reoffer'])(
    'the walk gives what the plain method gives on bench scenario %s (one device per channel; rescinds, a failing restore and forceNewChannel in 11), save and restore at the first 30 save points',
    (name) => {
      const s = { ...suite.find((x) => x.name === name)!, devices: 'c-windows' as const };
      const opts = { seed: 1, ops: ['save-restore' as const], maxSchedules: 30 };
      const walked = explore(s, opts);
      expect(verdicts(walked)).toEqual(verdicts(explore(s, { ...opts, plain: true })));
      expect(walked.failures).toEqual([]);
      expect(walked.schedules).toBe(30);
    },
    300_000,
  );

  it('a platform bug is caught with the C Windows guest by the walk as by the plain method', () => {
    const s = { ...suite.find((x) => x.name === 'inflight-host-transactions')!, devices: 'c-windows' as const };
    const opts = { seed: 1, ops: ['save-restore' as const], faults: ['drop-saved-packet' as const] };
    const walked = explore(s, opts);
    expect(walked.failures.length).toBeGreaterThan(0);
    expect(verdicts(walked)).toEqual(verdicts(explore(s, { ...opts, plain: true })));
  }, 300_000);
});
