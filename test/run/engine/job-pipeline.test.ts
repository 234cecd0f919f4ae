// One attempt of one job: the VM registered in the journal before it exists, a job past
// its deadline turned off and called a hang, lab failures retryable only before the
// scenario began, and a passing VM handed back for reuse.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, readJournal } from '../../../src/run/engine/journal.ts';
import { JobPipeline, type RealOutcome, type RealSide, type VmHandle } from '../../../src/run/engine/job-pipeline.ts';
import { makePlan } from '../../../src/run/engine/plan.ts';
import { SimClock } from '../../../src/run/sim/sim-clock.ts';
import type { Scenario } from '../../../src/scenario/model.ts';

const scenario: Scenario = { name: 's', channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'host-a', choices: {}, steps: [{ op: 'save' }, { op: 'restore' }] };
const job = makePlan({
  lab: 'l', hosts: [{ name: 'h', build: 'b', migrationPartner: undefined, capacity: { vmSlots: 2, memoryMB: 8192 } }],
  templates: [{ name: 't', parentDisk: 'D:\\p.vhdx', memoryMB: 2048, guest: { osName: 'os' } }], scenarios: [scenario],
}).jobs[0]!;
const lease = { hosts: ['h'], reuse: undefined, affinity: 'h|t' };

function setup(execute: RealSide['execute'], log: string[] = []) {
  const runDir = mkdtempSync(join(tmpdir(), 'pipeline-'));
  const { journal } = Journal.open(join(runDir, 'journal.jsonl'));
  const clock = new SimClock();
  const real: RealSide = {
    provision: async (_j, host, name) => { log.push(`provision ${name}`); return { key: name, host, name, memoryMB: 2048 }; },
    reset: async (vm) => { log.push(`reset ${vm.name}`); },
    execute,
    turnOff: async (vm: VmHandle) => { log.push(`turn-off ${vm.name}`); return { artefacts: [join(runDir, 'jobs', 'x', 'vm.json')] }; },
    remove: async (vm) => { log.push(`remove ${vm.name}`); },
    keep: async (vm) => { log.push(`keep ${vm.name}`); },
  };
  const pipeline = new JobPipeline({
    runId: 'r', runDir, journal, clock, real, jobTimeoutMs: 600_000, keepFailed: false,
    emulator: { run: async () => ({ trace: join(runDir, 'emu.jsonl'), verdict: 'pass', ms: 5 }) },
    checker: { check: async () => ({ verdict: 'pass' }) },
    scenarios: new Map([['s', scenario]]),
  });
  return { pipeline, clock, journal, runDir, log };
}

const ran = (host = 'h'): RealOutcome => ({ kind: 'ran', traces: ['t.jsonl'], evidence: {}, realMs: 10, host });

describe('JobPipeline', () => {
  it('registers the VM before provisioning, and hands a passing VM back for reuse', async () => {
    const { pipeline, clock, journal, runDir } = setup(async () => ran());
    const out = await clock.drive(pipeline.runAttempt(job, 1, lease, new AbortController().signal));
    journal.close();
    expect(out).toMatchObject({ kind: 'done', result: { verdict: 'pass', evidence: { trace: 'emu.jsonl' } }, idle: { host: 'h', affinity: 'h|t' } });
    const recs = readJournal(join(runDir, 'journal.jsonl')).records;
    expect(recs).toEqual([expect.objectContaining({ t: 'vm', host: 'h', jobId: job.jobId })]);
  });

  it('turns off a job past its deadline, keeps the evidence, calls it a hang and removes the VM', async () => {
    const { pipeline, clock, journal, runDir, log } = setup(() => new Promise(() => {}));
    const out = await clock.drive(pipeline.runAttempt(job, 1, lease, new AbortController().signal));
    journal.close();
    expect(out).toMatchObject({ kind: 'done', result: { verdict: 'hang', divergenceClass: 'hang', message: expect.stringMatching(/deadline of 600 s/), evidence: { artefacts: ['jobs/x/vm.json'] } } });
    expect(clock.now()).toBe(600_000);
    expect(log.slice(1)).toEqual([expect.stringMatching(/^turn-off /), expect.stringMatching(/^remove /)]);
    expect(readJournal(join(runDir, 'journal.jsonl')).records.map((r) => r.t)).toEqual(['vm', 'vm-gone']);
  });

  it('retries a lab failure before the scenario began; one after is an error result', async () => {
    const before = setup(async () => ({ kind: 'infra', started: false, host: 'h', message: 'ssh dropped', evidence: {} }));
    expect(await before.clock.drive(before.pipeline.runAttempt(job, 1, lease, new AbortController().signal))).toEqual({ kind: 'infra', message: 'ssh dropped', host: 'h', retryable: true });
    const after = setup(async () => ({ kind: 'infra', started: true, host: 'h', message: 'Save-VM: WMI job failed', evidence: {} }));
    expect(await after.clock.drive(after.pipeline.runAttempt(job, 1, lease, new AbortController().signal))).toMatchObject({ kind: 'done', result: { verdict: 'error', message: 'Save-VM: WMI job failed' } });
  });

  it('records no result for an attempt stopped midway, and removes its VM', async () => {
    const stop = new AbortController();
    const { pipeline, clock, log } = setup((_j, _s, _v, _h, _d, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))));
    void clock.sleep(1000).then(() => stop.abort());
    expect(await clock.drive(pipeline.runAttempt(job, 1, lease, stop.signal))).toEqual({ kind: 'canceled' });
    expect(log.at(-1)).toMatch(/^remove /);
  });
});
