// The scheduler: capacity is never exceeded, pairs run together, VMs are reused by
// affinity, only infrastructure failures are retried, and a failed host's jobs move to
// hosts of the same build or end as errors that say why.
import { describe, expect, it } from 'vitest';
import { makePlan, type PlannedJob } from '../../../src/run/engine/plan.ts';
import { Scheduler, type AttemptOutcome, type IdleVm, type JobExecutor, type Lease, type SchedHost } from '../../../src/run/engine/scheduler.ts';
import { SimClock } from '../../../src/run/sim/sim-clock.ts';
import type { JobResult } from '../../../src/report/summary.ts';
import type { Scenario } from '../../../src/scenario/model.ts';

const sc = (name: string, steps: Scenario['steps']): Scenario => ({ name, channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'host-a', choices: {}, steps });
const hostsOf = (n: number, build = (i: number) => 'b1', slots = 2): SchedHost[] => Array.from({ length: n }, (_, i) => ({
  name: `h${i}`, build: build(i), capacity: { vmSlots: slots, memoryMB: 8192 }, partner: `h${i % 2 === 0 ? i + 1 : i - 1}`,
}));
function planFor(hosts: SchedHost[], scenarios: Scenario[], seeds: number[], templates = ['t']) {
  return makePlan({
    lab: 'l', hosts: hosts.map((h) => ({ name: h.name, build: h.build, migrationPartner: h.partner, capacity: h.capacity })),
    templates: templates.map((t) => ({ name: t, parentDisk: 'D:\\p.vhdx', memoryMB: 2048, guest: { osName: 'os' } })), scenarios, matrix: { seeds },
  });
}

type Script = (job: PlannedJob, attempt: number, lease: Lease) => AttemptOutcome | Promise<AttemptOutcome>;

class FakeExecutor implements JobExecutor {
  readonly clock: SimClock;
  readonly script: Script;
  readonly inUse = new Map<string, number>();
  maxInUse = new Map<string, number>();
  readonly leases: Array<{ job: string; lease: Lease }> = [];
  dropped: IdleVm[] = [];
  constructor(clock: SimClock, script: Script) {
    this.clock = clock;
    this.script = script;
  }
  async runAttempt(job: PlannedJob, attempt: number, lease: Lease): Promise<AttemptOutcome> {
    this.leases.push({ job: job.jobId, lease });
    for (const h of lease.hosts) {
      this.inUse.set(h, (this.inUse.get(h) ?? 0) + 1);
      this.maxInUse.set(h, Math.max(this.maxInUse.get(h) ?? 0, this.inUse.get(h)!));
    }
    await this.clock.sleep(1000 + (job.seed % 7) * 100);
    for (const h of lease.hosts) this.inUse.set(h, this.inUse.get(h)! - 1);
    return this.script(job, attempt, lease);
  }
  async dropIdleVm(vm: IdleVm): Promise<void> {
    this.dropped.push(vm);
  }
}

const pass = (job: PlannedJob, lease: Lease, idle = true): AttemptOutcome => ({
  kind: 'done',
  result: { jobId: job.jobId, host: lease.hosts[0]!, hostBuild: job.hostBuild, guest: job.guest, template: job.template, scenario: job.scenario, seed: job.seed, verdict: 'pass', durationsMs: {}, evidence: {} },
  idle: idle && lease.affinity ? { key: `${lease.hosts[0]}-${job.jobId}`, host: lease.hosts[0]!, affinity: lease.affinity, memoryMB: job.memoryMB } : undefined,
});

async function run(hosts: SchedHost[], jobs: PlannedJob[], script: Script, opts = {}) {
  const clock = new SimClock();
  const ex = new FakeExecutor(clock, script);
  const results = new Map<string, JobResult>();
  const out: string[] = [];
  const s = new Scheduler(hosts, jobs, ex, {
    onResult: (j, r) => { expect(results.has(j.jobId)).toBe(false); results.set(j.jobId, r); },
    onHostOut: (h, why) => out.push(`${h}: ${why}`),
  }, opts);
  await clock.drive(s.run());
  return { results, ex, out, s, clock };
}

describe('Scheduler', () => {
  it('never puts more VMs on a host than its slots, counting idle VMs, and runs every job once', async () => {
    const hosts = hostsOf(4);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }]), sc('b', [{ op: 'pause' }])], [1, 2, 3, 4, 5], ['t1', 't2']);
    const { results, ex } = await run(hosts, plan.jobs, (j, _a, l) => pass(j, l));
    expect(results.size).toBe(plan.jobs.length);
    for (const [, n] of ex.maxInUse) expect(n).toBeLessThanOrEqual(2);
  });

  it('reuses an idle VM of the same host and template instead of provisioning', async () => {
    const hosts = hostsOf(2);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1, 2, 3, 4, 5, 6]);
    const { ex, s } = await run(hosts, plan.jobs, (j, _a, l) => pass(j, l));
    const reused = ex.leases.filter((l) => l.lease.reuse);
    expect(reused.length).toBeGreaterThan(0);
    expect(s.reused).toBe(reused.length);
    for (const l of reused) expect(l.lease.reuse!.affinity).toBe(`${l.lease.hosts[0]}|t`);
  });

  it('keeps a migration job on both hosts of a pair for its whole length', async () => {
    const hosts = hostsOf(4, (i) => (i < 2 ? 'b1' : 'b2'));
    const plan = planFor(hosts, [sc('m', [{ op: 'migrate', to: 'host-b' }]), sc('s', [{ op: 'save' }])], [1, 2, 3]);
    const { ex, results } = await run(hosts, plan.jobs, (j, _a, l) => pass(j, l));
    const pairs = ex.leases.filter((l) => l.job.startsWith('m+'));
    expect(pairs.length).toBe(12);
    for (const p of pairs) {
      expect(p.lease.hosts).toHaveLength(2);
      expect(hosts.find((h) => h.name === p.lease.hosts[0])!.partner).toBe(p.lease.hosts[1]);
    }
    expect(results.size).toBe(plan.jobs.length);
    for (const [, n] of ex.maxInUse) expect(n).toBeLessThanOrEqual(2);
  });

  it('retries infrastructure failures that allow it, at the front of the queue, and records every attempt', async () => {
    const hosts = hostsOf(1, () => 'b1', 1);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1, 2, 3]);
    const target = plan.jobs[0]!.jobId;
    const { results, ex } = await run(hosts, plan.jobs, (j, a, l) => (j.jobId === target && a < 3 ? { kind: 'infra', message: `ssh dropped ${a}`, host: l.hosts[0], retryable: true } : pass(j, l)));
    const r = results.get(target)!;
    expect(r.verdict).toBe('pass');
    expect(r.attempts).toBe(3);
    expect((r as JobResult & { attemptErrors: string[] }).attemptErrors).toEqual([expect.stringMatching(/attempt 1 on h\d: ssh dropped 1/), expect.stringMatching(/attempt 2 .*ssh dropped 2/)]);
    // One slot: the retries run before any job that was waiting behind the failed one.
    expect(ex.leases.map((l) => l.job).slice(0, 3)).toEqual([target, target, target]);
  });

  it('never retries a divergence, and gives up on infrastructure failures after maxAttempts', async () => {
    const hosts = hostsOf(2);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1, 2]);
    const [div, bad] = [plan.jobs[0]!.jobId, plan.jobs[1]!.jobId];
    const { results, ex } = await run(hosts, plan.jobs, (j, _a, l) => {
      if (j.jobId === div) { const p = pass(j, l, false) as Extract<AttemptOutcome, { kind: 'done' }>; return { ...p, result: { ...p.result, verdict: 'diverge', divergenceClass: 'lost' } }; }
      return { kind: 'infra', message: 'WMI job failed', host: undefined, retryable: true };
    }, { maxAttempts: 2 });
    expect(ex.leases.filter((l) => l.job === div)).toHaveLength(1);
    expect(results.get(div)!.verdict).toBe('diverge');
    expect(results.get(bad)).toMatchObject({ verdict: 'error', message: 'WMI job failed', attempts: 2 });
  });

  it('takes a host out after repeated failures and moves its jobs to a host of the same build', async () => {
    const hosts = hostsOf(4, (i) => (i < 3 ? 'b1' : 'b2'));
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1, 2, 3, 4]);
    const { results, out } = await run(hosts, plan.jobs, (j, _a, l) => (l.hosts[0] === 'h0' ? { kind: 'infra', message: 'host unreachable', host: 'h0', retryable: true } : pass(j, l)), { hostFailureLimit: 2, maxAttempts: 5 });
    expect(out.join()).toMatch(/h0: 2 infrastructure failures in a row, the last: host unreachable/);
    const planned0 = plan.jobs.filter((j) => j.host === 'h0');
    for (const j of planned0) expect(results.get(j.jobId)).toMatchObject({ verdict: 'pass', hostBuild: 'b1', host: expect.stringMatching(/^h[12]$/) });
  });

  it('ends the jobs no host can take any more with an error that says why', async () => {
    const hosts = hostsOf(2, (i) => `b${i}`);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1]);
    const { results } = await run(hosts, plan.jobs, (j, _a, l) => pass(j, l), { hostsOut: new Map([['h1', 'preflight: no Hyper-V']]) });
    const lost = plan.jobs.find((j) => j.host === 'h1')!;
    expect(results.get(lost.jobId)).toMatchObject({ verdict: 'error', message: expect.stringMatching(/no host of build b1 is left in the run \(h1: preflight: no Hyper-V\)/) });
  });

  it('records no result for attempts cut short by stop()', async () => {
    const hosts = hostsOf(2);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1, 2, 3, 4, 5, 6]);
    const clock = new SimClock();
    const ex = new FakeExecutor(clock, (j, _a, l) => pass(j, l));
    const results: string[] = [];
    const s = new Scheduler(hosts, plan.jobs, { runAttempt: async (j, a, l, signal) => { await clock.sleep(500); if (signal.aborted) return { kind: 'canceled' }; return ex.runAttempt(j, a, l); }, dropIdleVm: async () => {} }, { onResult: (j) => results.push(j.jobId) });
    const done = s.run();
    void clock.sleep(200).then(() => s.stop());
    await clock.drive(done);
    expect(results).toEqual([]);
  });

  it('gives a straggler a second attempt once nothing waits, takes the first result and cancels the other', async () => {
    const hosts = hostsOf(2);
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], Array.from({ length: 30 }, (_, i) => i + 1));
    const stuck = plan.jobs[plan.jobs.length - 1]!.jobId;
    const clock = new SimClock();
    const results = new Map<string, JobResult>();
    const canceled: number[] = [];
    const s = new Scheduler(hosts, plan.jobs, {
      runAttempt: async (job, attempt, lease, signal) => {
        try {
          // The last job's first attempt hangs (a VM that never boots) until cancelled.
          await clock.sleep(job.jobId === stuck && attempt === 1 ? 3_600_000 : 1000, signal);
        } catch {
          canceled.push(attempt);
          return { kind: 'canceled' };
        }
        return pass(job, lease, false);
      },
      dropIdleVm: async () => {},
    }, { onResult: (j, r) => { expect(results.has(j.jobId)).toBe(false); results.set(j.jobId, r); } }, { hedge: { clock, minSamples: 5 } });
    await clock.drive(s.run());
    expect(results.get(stuck)).toMatchObject({ verdict: 'pass', attempts: 2 });
    expect(canceled).toEqual([1]);
    expect(s.hedges).toBe(1);
    expect(results.size).toBe(plan.jobs.length);
    expect(clock.now()).toBeLessThan(60_000);
  });

  it('keeps the jobs of a host with no known build on that host', async () => {
    const hosts = hostsOf(2, () => 'unknown');
    const plan = planFor(hosts, [sc('a', [{ op: 'save' }])], [1, 2, 3, 4, 5, 6]);
    const { ex, results } = await run(hosts, plan.jobs, (j, _a, l) => pass(j, l));
    expect(results.size).toBe(plan.jobs.length);
    for (const l of ex.leases) expect(l.lease.hosts[0]).toBe(plan.jobs.find((j) => j.jobId === l.job)!.host);
  });
});
