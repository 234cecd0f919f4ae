// The lab's real side with the real src/lab classes on the Hyper-V stand-in (a real
// PowerShell engine running the stand-in cmdlets): a guest that cannot be reached makes
// provisioning fail; the VM and its differencing disk are removed each time, the attempt
// is retried, and the job ends as an error that says why, with nothing left on the host.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../../src/errors.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import type { LabHost } from '../../../src/lab/inventory.ts';
import type { VmTemplate } from '../../../src/lab/template.ts';
import { runEngine } from '../../../src/run/engine.ts';
import { JobPipeline, realClock } from '../../../src/run/job-pipeline.ts';
import { readJournal } from '../../../src/run/journal.ts';
import { LabRealSide } from '../../../src/run/lab-real-side.ts';
import { makePlan } from '../../../src/run/plan.ts';
import { DEFAULT_REAL_JOB } from '../../../src/run/real-job.ts';
import type { Scenario } from '../../../src/scenario/model.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from '../../lab/host/standin.ts';

const reason = pwsh ? undefined : 'no PowerShell';
const scenario: Scenario = { name: 'idle', channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'host-a', choices: {}, steps: [{ op: 'save' }, { op: 'restore' }] };
const template: VmTemplate = {
  file: 'ubuntu.yaml', name: 'ubuntu', parentDisk: PARENT, generation: 2, memoryMB: 2048, processors: 2, secureBoot: false,
  guest: { os: 'linux', osName: 'Ubuntu 24.04', driver: 'linux-module', user: 'bench', credential: { kind: 'key', key: { kind: 'env', name: 'UNUSED' } }, hostKey: { kind: 'fingerprint', sha256: 'SHA256:3bHq0j0nT5n0c1Zf2G6eXb1mJ4qk2vT9w8yR7uL5sPo' }, sshPort: 22 },
  provisioning: { kind: 'cloud-init', file: 'user-data.yaml' },
};
const labHost: LabHost = { name: 'hv-a', transport: { kind: 'local' }, vmRoot: VM_ROOT, switchName: SWITCH, migrationPartner: undefined, capacity: { vmSlots: 2, memoryMB: 8192 }, build: '26100', source: { file: 'lab.yaml', line: 1 } };

describe.skipIf(reason)(`the lab's real side on the Hyper-V stand-in ${reason ? `(skipped: ${reason})` : pwshLabel}`, { timeout: 120_000 }, () => {
  let host: StandinHost;
  beforeAll(async () => {
    host = newStandinHost('hv-a');
    await initHost(host, {});
  });
  afterAll(async () => disposeHost(host));

  it('removes every VM it provisioned when the guest cannot be reached, retries, and ends the job as an error', async () => {
    const hv = new HyperV(host.ctx, { provisionMs: 30_000, startMs: 30_000, guestReadyMs: 30_000, stopMs: 30_000 });
    const connects: string[] = [];
    const vmsAtConnect: number[] = [];
    const real = new LabRealSide({
      runId: 'r1', hosts: new Map([['hv-a', labHost]]), hv: () => hv, templates: new Map([['ubuntu', template]]),
      driverSource: { kind: 'prebuilt', koFile: 'unused.ko' }, sampleCtl: 'sample-ctl', clock: realClock, realJob: DEFAULT_REAL_JOB,
      connectGuest: async (e) => { connects.push(e.host); vmsAtConnect.push((await host.state()).Vms.length); throw new InfraError(`ssh ${e.host}:22: connect ECONNREFUSED`); },
    });
    const plan = makePlan({ lab: 'standin', hosts: [{ name: 'hv-a', build: '26100', migrationPartner: undefined, capacity: labHost.capacity }], templates: [template], scenarios: [scenario] });
    const runDir = join(mkdtempSync(join(tmpdir(), 'lab-real-side-')), 'r1');
    const r = await runEngine({
      runId: 'r1', runDir, plan, resume: false, hosts: [{ name: 'hv-a', build: '26100', capacity: labHost.capacity, partner: undefined }],
      scheduler: { maxAttempts: 2 },
      hooks: { sweepHost: (h, keep) => real.sweepHost(h, keep) },
      executor: (journal) => new JobPipeline({
        runId: 'r1', runDir, journal, clock: realClock, real, jobTimeoutMs: 60_000, keepFailed: false, scenarios: new Map([['idle', scenario]]),
        emulator: { run: async () => ({ trace: 'emulator.jsonl', verdict: 'pass', ms: 1 }) },
        checker: { check: async () => ({ verdict: 'pass' }) },
      }),
    });
    expect(r.summary!.jobs).toEqual([expect.objectContaining({ verdict: 'error', attempts: 2, message: expect.stringMatching(/ECONNREFUSED/) })]);
    expect(connects).toHaveLength(2);
    // The first attempt's VM was gone before the second was made: one VM on the host each time.
    expect(vmsAtConnect).toEqual([1, 1]);
    for (const ip of connects) expect(ip).toMatch(/^192\.168\.77\.\d+$/);
    const state = await host.state();
    expect(state.Vms).toEqual([]);
    expect(state.Files.filter((f) => f !== PARENT)).toEqual([]);
    const recs = readJournal(join(runDir, 'journal.jsonl')).records;
    expect(recs.filter((x) => x.t === 'vm')).toHaveLength(2);
    expect(recs.filter((x) => x.t === 'vm-gone')).toHaveLength(2);
  });
});
