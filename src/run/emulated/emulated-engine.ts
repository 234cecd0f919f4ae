// The emulated lab (emulated-lab.ts) on the run engine: what the emulated nightly needs
// to run on engine.ts instead of a loop of its own, and so share the real lab's plan,
// crash-safe journal, scheduler, retries and quarantine.
//
// - Each emulated host is a build of its own (its gap choices); jobs stay on their host
//   (placement 'pinned'), because two hosts may share a build label and differ in choices.
// - A migrating scenario needs no host pair: the emulator migrates to an instance of its own.
// - There are no VMs: nothing is provisioned, reused or swept, and a host's capacity is
//   just how many of its jobs may wait on the worker pool at once.
// - A job whose worker died is an infrastructure failure and is retried (another worker
//   runs it); divergences and hangs are results, as everywhere.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isBenchError } from '../../errors.ts';
import type { JobResult } from '../../report/summary.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { FaultMode } from '../../vmbus/faults.ts';
import type { EmulatedLab } from './emulated-lab.ts';
import { makePlan, type Plan, type PlannedJob } from '../engine/plan.ts';
import type { AttemptOutcome, JobExecutor, Lease, SchedHost } from '../engine/scheduler.ts';
import type { WorkerPool } from '../workers/worker-pool.ts';
import { deviceOf } from '../../device-api/load.ts';
import { devicePath } from '../../scenario/model.ts';

export function emulatedEngineInputs(lab: EmulatedLab, scenarios: readonly Scenario[], slotsPerHost: number): { plan: Plan; hosts: SchedHost[] } {
  const hosts: SchedHost[] = lab.hosts.map((h) => ({ name: h.name, build: h.build, capacity: { vmSlots: slotsPerHost, memoryMB: slotsPerHost }, partner: undefined }));
  const plan = makePlan({
    lab: lab.name,
    hosts: hosts.map((h) => ({ name: h.name, build: h.build, migrationPartner: undefined, capacity: h.capacity })),
    // One slot of "memory" per job: the capacity counts jobs, not megabytes.
    templates: lab.guests.map((g) => ({ name: lab.guests.length > 1 ? `${lab.template}-${g}` : lab.template, parentDisk: '(emulator)', memoryMB: 1, guest: { osName: g } })),
    scenarios,
    matrix: { seeds: lab.seeds, pairs: false },
  });
  return { plan, hosts };
}

export class EmulatedExecutor implements JobExecutor {
  private readonly pool: WorkerPool;
  private readonly lab: EmulatedLab;
  private readonly scenarios: ReadonlyMap<string, Scenario>;
  private readonly runDir: string;
  private readonly faults: readonly FaultMode[];

  /** `faults`: platform bugs every job imitates (`bench nightly --fault`), to watch the bench catch them. */
  constructor(pool: WorkerPool, lab: EmulatedLab, scenarios: readonly Scenario[], runDir: string, faults: readonly FaultMode[] = []) {
    this.pool = pool;
    this.faults = faults;
    this.lab = lab;
    this.scenarios = new Map(scenarios.map((s) => [s.name, s]));
    this.runDir = runDir;
  }

  async runAttempt(job: PlannedJob, attempt: number, lease: Lease, signal: AbortSignal): Promise<AttemptOutcome> {
    const host = this.lab.hosts.find((h) => h.name === lease.hosts[0]);
    const listed = this.scenarios.get(job.scenario);
    // The lab's devices (devices: c) go to the worker with the scenario.
    const scenario = listed && this.lab.devices ? { ...listed, devices: this.lab.devices } : listed;
    if (!host || !scenario) return { kind: 'infra', message: `no ${host ? 'scenario' : 'host'} for job ${job.jobId}`, host: undefined, retryable: false };
    const rel = join('jobs', job.jobId, attempt > 1 ? `emulator-${attempt}.jsonl` : 'emulator.jsonl');
    mkdirSync(join(this.runDir, 'jobs', job.jobId), { recursive: true });
    const started = performance.now();
    try {
      const out = await this.pool.run({ kind: 'emulated-job', jobId: job.jobId, scenario, seed: job.seed, choices: host.choices, faults: this.faults.length > 0 ? this.faults : undefined, traceFile: join(this.runDir, rel) });
      if (signal.aborted) return { kind: 'canceled' };
      const result: JobResult = {
        jobId: job.jobId, host: host.name, hostBuild: job.hostBuild, guest: job.guest, template: job.template, scenario: job.scenario, seed: job.seed,
        device: deviceOf(devicePath(scenario)).name,
        verdict: out.verdict, divergenceClass: out.divergenceClass, message: out.message, failedProperties: out.failedProperties,
        firstUnexplained: out.firstViolation ? { file: rel, line: out.firstViolation.line, event: out.firstViolation.event } : undefined,
        timeline: out.timeline, durationsMs: { emulator: out.emulatorMs }, evidence: { trace: rel },
        reproduce: { scenarioFile: scenario.source?.file, choices: host.choices, faults: this.faults.length > 0 ? [...this.faults] : undefined },
      };
      return { kind: 'done', result };
    } catch (e) {
      if (signal.aborted) return { kind: 'canceled' };
      // A bad scenario (exit 2) will fail again anywhere; a dead worker (exit 3) is worth another worker.
      const retryable = !(isBenchError(e) && e.exitCode === 2);
      return { kind: 'infra', message: `${(e as Error).message.split('\n')[0]} (after ${Math.round(performance.now() - started)} ms)`, host: undefined, retryable };
    }
  }

  async dropIdleVm(): Promise<void> {
    // No VMs in an emulated lab.
  }
}
