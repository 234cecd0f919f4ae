// Loopback jobs with the real C drivers: the sample VSP and the Windows client driver,
// compiled to WebAssembly and put in one partition as a loopback offer puts them in one
// host (support/c-loopback.ts), driven by loopback-lab.ts and real-job.ts through their
// control interfaces exactly as on a host. Their merged trace is checked against the
// emulator's loopback topology: the C code against the twins' model, differentially.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { inTopology } from '../../../src/run/real/lab-run.ts';
import { loopbackJobLab } from '../../../src/run/real/loopback-lab.ts';
import { sampleControl } from '../../../devices/sample/control.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { loopbackStepProblem } from '../../../src/scenario/loopback.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import type { Scenario } from '../../../src/scenario/model.ts';
import { cLoopbackDrivers } from './support/c-loopback.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
// Quiet and deadlines in the partition's virtual time: long ones cost nothing.
const OPTS = { opTimeoutMs: 30_000, settleQuietMs: 2_000, settleTimeoutMs: 120_000 };
const files = [
  ...readdirSync('bench/scenarios').filter((f) => f.endsWith('.yaml')).sort().map((f) => join('bench/scenarios', f)),
  'test/fixtures/scenarios/loopback-client-runs-on.yaml',
];

async function runOnC(s: Scenario) {
  const c = cLoopbackDrivers(s);
  const lab = loopbackJobLab({ host: 'hv-a', clock: c.clock, control: sampleControl }, c.drivers);
  const out = await runRealJob({ scenario: s, seed: 1, hostMap: { [s.host]: 'hv-a' } }, lab, mkdtempSync(join(tmpdir(), 'c-loopback-')), new AbortController().signal, OPTS);
  return { out, log: c.log };
}

describe.skipIf(!toolchain)('loopback jobs on the C drivers', () => {
  for (const f of files) {
    it(`${f}: the C VSP and client pass the check against the emulator's loopback topology`, async () => {
      const s = await loadScenarioFile(f);
      // Planned not applicable (attach.ts), or more than the one channel a client driver has.
      if (loopbackStepProblem(s) || s.channels.length !== 1) return;
      const { out, log } = await runOnC(s);
      expect(out, JSON.stringify(out)).toMatchObject({ kind: 'ran' });
      if (out.kind !== 'ran') return;
      const r = await checkTraces(inTopology({ attach: 'loopback' }, s), out.traces, { minimise: false });
      expect(r.result, JSON.stringify(r.result).slice(0, 400)).toMatchObject({ verdict: 'pass' });
      // The VSP's counters gave every mark (trace_seq); the commands were a loopback job's.
      expect(log[1]).toMatch(/^vsp: open \d+ \S+ loopback ring-pages=\d+$/);
    }, 120_000);
  }

  it('writes a trace the VM topology does not explain: the client completes its holds through a channel pause', async () => {
    const s = await loadScenarioFile('test/fixtures/scenarios/loopback-client-runs-on.yaml');
    const { out } = await runOnC(s);
    if (out.kind !== 'ran') throw new Error(JSON.stringify(out));
    expect((await checkTraces(s, out.traces, { minimise: false })).result.verdict).toBe('diverge');
  }, 120_000);
});
