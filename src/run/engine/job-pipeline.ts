// One attempt of one lab job, from VM to verdict: the JobExecutor the scheduler drives,
// the same for the real lab (lab-run.ts) and the simulated one (sim-lab.ts).
//
//   1. the emulator side starts at once (a worker thread in the real engine) and runs
//      while the real side does;
//   2. the VM: an idle one of the job's affinity is reset to its base checkpoint, else a
//      fresh one is provisioned; its teardown is registered in the journal before
//      provisioning starts, so a crash at any point leaves a VM the resume will sweep;
//   3. the real side runs the scenario under a per-job deadline; past it the VM is
//      turned off, its evidence kept, and the job is a `hang`;
//   4. once both sides are done the traces are checked, and the result goes back.
//
// After the attempt the VM is handed back idle for reuse (a passing job with an
// affinity), kept for debugging (a failure with --keep-failed), or removed.

import { join } from 'node:path';
import type { Evidence, HostFactsRecord, JobResult } from '../../report/summary.ts';
import type { Scenario } from '../../scenario/model.ts';
import { nowIso, type Journal } from './journal.ts';
import type { PlannedJob } from './plan.ts';
import type { AttemptOutcome, IdleVm, JobExecutor, Lease } from './scheduler.ts';
import { deviceOf } from '../../device-api/load.ts';
import { devicePath } from '../../scenario/model.ts';

/** Time, real or simulated. Everything in the engine that waits, waits through this. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason as Error); };
    signal?.addEventListener('abort', onAbort, { once: true });
  }),
};

export interface VmHandle {
  /** Journal key (the VM's name; unique in the run). */
  key: string;
  host: string;
  name: string;
  memoryMB: number;
  /** Whatever the real side needs to address the VM (a Hyper-V VM id). */
  ref?: unknown;
}

export type RealOutcome =
  | { kind: 'ran'; traces: string[]; evidence: Evidence; realMs: number; host: string }
  /** A VM operation or the whole job passed its deadline; the VM was turned off. */
  | { kind: 'hang'; message: string; evidence: Evidence; realMs: number; host: string }
  /** The lab failed. `started`: the scenario's first step had begun (no retry then). */
  | { kind: 'infra'; started: boolean; host: string | undefined; message: string; evidence: Evidence };

export interface RealSide {
  /** A fresh VM from a differencing disk; removes what it made before throwing. */
  provision(job: PlannedJob, host: string, name: string, signal: AbortSignal): Promise<VmHandle>;
  /** An idle VM back to its base checkpoint, running. */
  reset(vm: VmHandle, signal: AbortSignal): Promise<void>;
  execute(job: PlannedJob, scenario: Scenario, vm: VmHandle, hosts: string[], jobDir: string, signal: AbortSignal): Promise<RealOutcome>;
  /** Turns a hung VM off (evidence first, where it can be read). */
  turnOff(vm: VmHandle, jobDir: string): Promise<Evidence>;
  remove(vm: VmHandle): Promise<void>;
  /** Keeps a failed job's VM for debugging (a checkpoint named after the job). */
  keep(vm: VmHandle, jobId: string): Promise<void>;
}

export interface EmulatorOutcome {
  trace: string;
  verdict: 'pass' | 'diverge' | 'hang';
  message?: string | undefined;
  ms: number;
}

export interface EmulatorSide {
  run(job: PlannedJob, scenario: Scenario, jobDir: string): Promise<EmulatorOutcome>;
}

/** What the checker says about the real traces (run/commands/check-trace.ts in the real engine). */
export type CheckOutcome = Pick<JobResult, 'verdict' | 'divergenceClass' | 'message' | 'failedProperties' | 'firstUnexplained' | 'expected' | 'timeline'> & {
  minimizedScenario?: string | undefined;
  /** what the check left out (JobResult.notChecked) */
  notChecked?: string[] | undefined;
};

export interface TraceChecker {
  check(job: PlannedJob, scenario: Scenario, traces: string[], jobDir: string): Promise<CheckOutcome>;
}

export interface PipelineOptions {
  runId: string;
  runDir: string;
  journal: Journal;
  clock: Clock;
  real: RealSide;
  emulator: EmulatorSide;
  checker: TraceChecker;
  scenarios: ReadonlyMap<string, Scenario>;
  /** Deadline of the real side of one job. */
  jobTimeoutMs: number;
  keepFailed: boolean;
  /** Reuse VMs between jobs of the same affinity (default true). */
  reuse?: boolean;
  /** What was read from a host at preflight (the real lab), recorded in each job's result. */
  hostFacts?: (host: string) => HostFactsRecord | undefined;
  /** The driver builds installed on a host at preflight, recorded in each job's result. */
  hostDrivers?: (host: string) => JobResult['drivers'];
}

export class JobPipeline implements JobExecutor {
  private readonly o: PipelineOptions;
  private readonly vms = new Map<string, VmHandle>();
  private serial = 0;
  /** VMs provisioned (for the benchmark). */
  provisioned = 0;

  constructor(options: PipelineOptions) {
    this.o = options;
  }

  async runAttempt(job: PlannedJob, attempt: number, lease: Lease, signal: AbortSignal): Promise<AttemptOutcome> {
    const { o } = this;
    const scenario = o.scenarios.get(job.scenario);
    if (!scenario) return { kind: 'infra', message: `scenario ${job.scenario} is not loaded`, host: undefined, retryable: false };
    const dir = join(o.runDir, 'jobs', job.jobId, attempt > 1 ? `attempt-${attempt}` : '.');
    const rel = (p: string | undefined) => (p === undefined ? undefined : p.startsWith(o.runDir) ? p.slice(o.runDir.length + 1) : p);
    const host = lease.hosts[0]!;
    const started = o.clock.now();
    // The emulator side needs no lab: it runs while the VM is prepared and driven.
    const emulator = o.emulator.run(job, scenario, dir).then((r) => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }));

    let vm: VmHandle;
    try {
      vm = await this.acquire(job, lease, signal);
    } catch (e) {
      if (signal.aborted) return { kind: 'canceled' };
      return { kind: 'infra', message: messageOf(e), host, retryable: true };
    }
    if (signal.aborted) { await this.drop(vm); return { kind: 'canceled' }; }

    // The job's own deadline, on top of the run's stop signal.
    const jobAbort = new AbortController();
    const onStop = () => jobAbort.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    const timer = new AbortController();
    const deadline = o.clock.sleep(o.jobTimeoutMs, timer.signal).then(() => 'deadline' as const, () => 'cleared' as const);
    let real: RealOutcome | 'deadline';
    try {
      real = await Promise.race([o.real.execute(job, scenario, vm, lease.hosts, dir, jobAbort.signal), deadline.then((d) => (d === 'deadline' ? d : new Promise<never>(() => {})))]);
    } catch (e) {
      real = { kind: 'infra', started: true, host, message: messageOf(e), evidence: {} };
    } finally {
      timer.abort();
      signal.removeEventListener('abort', onStop);
    }
    if (signal.aborted) { jobAbort.abort(signal.reason); await this.drop(vm); return { kind: 'canceled' }; }
    if (real === 'deadline') {
      jobAbort.abort(new Error('job deadline'));
      const evidence = await o.real.turnOff(vm, dir).catch(() => ({}));
      real = { kind: 'hang', message: `the job passed its deadline of ${Math.round(o.jobTimeoutMs / 1000)} s; the VM was turned off`, evidence, realMs: o.clock.now() - started, host };
    }

    const ranOn = real.kind === 'infra' ? host : real.host;
    const read = o.hostFacts?.(ranOn);
    const guestOs = (vm.ref as { guestOs?: string } | undefined)?.guestOs;
    const facts = read || guestOs ? { ...read, ...(guestOs ? { guestOs } : {}) } : undefined;
    const drivers = [...(o.hostDrivers?.(ranOn) ?? []), ...((vm.ref as { drivers?: JobResult['drivers'] } | undefined)?.drivers ?? [])];
    const base = {
      jobId: job.jobId, host: ranOn, hostBuild: facts?.osBuild ?? job.hostBuild, guest: job.guest, template: job.template,
      scenario: job.scenario, seed: job.seed, attach: job.attach, device: deviceOf(devicePath(scenario)).name, reproduce: { scenarioFile: scenario.source?.file },
      ...(facts ? { hostFacts: facts } : {}), ...(drivers.length ? { drivers } : {}),
    };
    if (real.kind === 'infra') {
      if (real.started && o.keepFailed) await this.keep(vm, job.jobId); else await this.drop(vm);
      if (real.started) {
        // The scenario had begun: what it did to the device cannot be undone, so no retry.
        return { kind: 'done', result: { ...base, verdict: 'error', message: real.message, durationsMs: {}, evidence: relEvidence(real.evidence, rel) } };
      }
      return { kind: 'infra', message: real.message, host: real.host ?? host, retryable: true };
    }
    const emu = await emulator;
    const emuEvidence = emu.ok && emu.r.trace ? rel(emu.r.trace) : undefined;
    const durationsMs = { real: real.realMs, emulator: emu.ok ? emu.r.ms : undefined };
    if (real.kind === 'hang') {
      if (o.keepFailed) await this.keep(vm, job.jobId); else await this.drop(vm);
      return { kind: 'done', result: { ...base, verdict: 'hang', divergenceClass: 'hang', message: real.message, durationsMs, evidence: { ...relEvidence(real.evidence, rel), trace: emuEvidence } } };
    }
    if (!emu.ok) {
      await this.finishVm(vm, job, lease, false);
      return { kind: 'done', result: { ...base, verdict: 'error', message: `emulator side failed: ${messageOf(emu.e)}`, durationsMs, evidence: relEvidence(real.evidence, rel) } };
    }
    const t0 = o.clock.now();
    let check: CheckOutcome;
    try {
      check = await o.checker.check(job, scenario, real.traces, dir);
    } catch (e) {
      check = { verdict: 'error', message: `the traces could not be checked: ${messageOf(e)}` };
    }
    const { minimizedScenario, ...verdict } = check;
    const idle = await this.finishVm(vm, job, lease, check.verdict === 'pass');
    const emuNote = emu.r.verdict !== 'pass' ? ` (the emulator's own run: ${emu.r.verdict}${emu.r.message ? `, ${emu.r.message}` : ''})` : '';
    return {
      kind: 'done',
      idle,
      result: {
        ...base, ...verdict, message: (verdict.message ?? '') + emuNote || undefined,
        durationsMs: { ...durationsMs, check: o.clock.now() - t0 },
        evidence: { ...relEvidence(real.evidence, rel), trace: emuEvidence, minimizedScenario: rel(minimizedScenario) },
      },
    };
  }

  async dropIdleVm(idle: IdleVm): Promise<void> {
    const vm = this.vms.get(idle.key);
    if (vm) await this.drop(vm);
  }

  private async acquire(job: PlannedJob, lease: Lease, signal: AbortSignal): Promise<VmHandle> {
    const { o } = this;
    const idle = lease.reuse ? this.vms.get(lease.reuse.key) : undefined;
    if (idle) {
      try {
        await o.real.reset(idle, signal);
        return idle;
      } catch {
        // A VM that will not reset is not trusted again; a fresh one replaces it.
        await this.drop(idle);
      }
    }
    const host = lease.hosts[0]!;
    const name = `bench-${o.runId}-${(++this.serial).toString(36)}-${process.pid.toString(36)}`;
    // Teardown first: from this line on, a crash leaves a VM the resume knows to remove.
    o.journal.append({ t: 'vm', key: name, host, name, jobId: job.jobId, at: nowIso() });
    try {
      const vm = await o.real.provision(job, host, name, signal);
      this.vms.set(vm.key, vm);
      this.provisioned++;
      return vm;
    } catch (e) {
      await o.real.remove({ key: name, host, name, memoryMB: job.memoryMB }).then(
        () => o.journal.append({ t: 'vm-gone', key: name, at: nowIso() }),
        () => undefined, // left registered: the end-of-run sweep removes it
      );
      throw e;
    }
  }

  /** Returns the VM as idle for reuse, or removes it. */
  private async finishVm(vm: VmHandle, job: PlannedJob, lease: Lease, passed: boolean): Promise<IdleVm | undefined> {
    if (!passed && this.o.keepFailed) { await this.keep(vm, job.jobId); return undefined; }
    if (passed && lease.affinity && this.o.reuse !== false && !job.partner) {
      return { key: vm.key, host: vm.host, affinity: lease.affinity, memoryMB: vm.memoryMB };
    }
    await this.drop(vm);
    return undefined;
  }

  private async keep(vm: VmHandle, jobId: string): Promise<void> {
    try {
      await this.o.real.keep(vm, jobId);
      this.o.journal.append({ t: 'vm-kept', key: vm.key, jobId, at: nowIso() });
      this.vms.delete(vm.key);
    } catch {
      await this.drop(vm);
    }
  }

  private async drop(vm: VmHandle): Promise<void> {
    try {
      await this.o.real.remove(vm);
      this.o.journal.append({ t: 'vm-gone', key: vm.key, at: nowIso() });
    } catch {
      // Still registered in the journal: the end-of-run sweep (or the next resume) removes it.
    }
    this.vms.delete(vm.key);
  }
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function relEvidence(e: Evidence, rel: (p: string | undefined) => string | undefined): Evidence {
  return {
    trace: rel(e.trace), hostTrace: rel(e.hostTrace), guestTrace: rel(e.guestTrace),
    artefacts: e.artefacts?.map((a) => rel(a)!),
  };
}
