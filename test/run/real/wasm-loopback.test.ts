// A loopback job's whole path on the emulator with the drivers' own C code: real-job.ts
// and loopback-lab.ts, the code a lab run uses, drive the C VSP and the C Windows client
// driver (WebAssembly) through their control interfaces, read their trace-seq marks,
// collect both traces and merge them, and the check runs on the merged trace against
// the emulator's loopback topology.
//
// What running the real C drivers through that path found (the emulator-trace stand-in
// in support/emulator-lab.ts could not): the channels' opening events came before
// scenario.begin (fixed in real-job.ts: scenario.begin is marked before the channels
// open), and the Windows client traces `Enabled` and `Started` on the guest side (the
// emulator's loopback topology now writes them too, so the whole job must pass).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { loopbackJobLab } from '../../../src/run/real/loopback-lab.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { wasmLoopbackDrivers } from '../../../src/run/real/wasm-loopback.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { inTopology } from '../../../src/run/real/lab-run.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const OPTS = { opTimeoutMs: 30_000, settleQuietMs: 30, settleTimeoutMs: 5000 };

describe.skipIf(!toolchain)('a loopback job on the C drivers in WebAssembly', () => {
  it('runs end to end through the lab\'s own job code: control, marks, both traces collected and merged in order', async () => {
    const s = await loadScenarioFile('bench/scenarios/02-inflight-host-transactions.yaml');
    const drivers = wasmLoopbackDrivers({ clock: realClock });
    try {
      const lab = loopbackJobLab({ host: 'emu', clock: realClock }, drivers);
      const out = await runRealJob({ scenario: s, seed: 1, hostMap: { [s.host]: 'emu' } }, lab, mkdtempSync(join(tmpdir(), 'wasm-loopback-')), new AbortController().signal, OPTS);
      expect(out, JSON.stringify(out)).toMatchObject({ kind: 'ran' });
      if (out.kind !== 'ran') return;
      const merged = out.traces.flatMap((f) => readFileSync(f, 'utf8').trim().split('\n')).map((l) => JSON.parse(l) as Record<string, unknown>);
      // Both drivers' events are in it, each side's from its own driver.
      expect(merged.some((e) => e.side === 'host' && e.ev === 'pkt.save')).toBe(true);
      expect(merged.some((e) => e.side === 'guest' && e.ev === 'pkt.recv')).toBe(true);
      // The merge put every driver event between the right bench events: the opening
      // ones after scenario.begin, the saves inside vm.save.begin .. vm.save.end.
      const at = (pred: (e: Record<string, unknown>) => boolean) => merged.findIndex(pred);
      expect(merged[0]).toMatchObject({ side: 'bench', ev: 'scenario.begin' });
      const saveBegin = at((e) => e.ev === 'vm.save.begin');
      const saveEnd = at((e) => e.ev === 'vm.save.end');
      const saves = merged.map((e, i) => (e.ev === 'pkt.save' ? i : -1)).filter((i) => i >= 0);
      expect(saves.length).toBeGreaterThan(0);
      expect(saves.every((i) => i > saveBegin && i < saveEnd)).toBe(true);
      // The model (the emulator's loopback topology) explains the whole job, the client's
      // own Enabled and Started included.
      const checked = await checkTraces(inTopology({ attach: 'loopback' }, s), out.traces, { minimise: false });
      expect(checked.result, JSON.stringify(checked.result)).toMatchObject({ verdict: 'pass' });
      expect(merged.filter((e) => e.side === 'host' && e.ev === 'ch.state').slice(0, 4).map((e) => e.state)).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
    } finally {
      drivers.stop();
    }
  }, 120_000);
});
