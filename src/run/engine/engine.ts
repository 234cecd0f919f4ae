// A lab run from plan to summary, crash-safe: the part of `bench run` / `bench nightly`
// that does not care whether the lab is real (lab-run.ts) or simulated (sim-lab.ts).
//
//   plan.json  written (atomically) before anything starts; a resume checks it is the
//              same plan (same digest) and refuses another;
//   journal    opened for append; a resume folds it: jobs with a result are done, VMs
//              registered and not removed are swept before anything new starts;
//   schedule   the remaining jobs on the hosts still in the run;
//   results    each job's result is quarantined if a live entry covers it, journaled
//              (fsync) and handed to the reporters as it comes;
//   end        idle VMs removed, a last sweep of every VM of the run on every host, the
//              summary built from the journal (so a resumed run's summary holds every
//              job exactly once), and `run-end` journaled.
//
// A stop (SIGINT, SIGTERM) lets running attempts end, records no result for the ones it
// cut short, removes the VMs and leaves the journal open for `--resume`.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { InfraError, InputError, isBenchError } from '../../errors.ts';
import type { Reporter } from '../../report/reporter.ts';
import { redact } from '../../lab/secrets.ts';
import { runDirLayout } from '../../report/run-dir.ts';
import { summarize, type HostFactsRecord, type JobResult, type RunSummary, type SummaryOutcome } from '../../report/summary.ts';
import { diskFullError, isDiskFull, isDiskFullResult, Journal, keptResults, nowIso, type JournalRecord, type JournalState, type VmEntry } from './journal.ts';
import { join } from 'node:path';
import { planJson, type Plan, type PlannedJob } from './plan.ts';
import { NO_QUARANTINE, quarantineFor, type QuarantineList } from './quarantine.ts';
import { Scheduler, type JobExecutor, type SchedHost, type SchedulerOptions } from './scheduler.ts';

export interface RunHooks {
  /** Removes the run's VMs on a host, except `keep`; returns how many it removed. */
  sweepHost(host: string, keep: ReadonlySet<string>): Promise<number>;
  /** Hosts to take out before any job starts, with the reason (failed preflight). */
  preflight?(hosts: readonly SchedHost[]): Promise<Map<string, string>>;
  /**
   * What preflight read from a host (src/lab/host-facts.ts): a job skipped before it
   * starts records the build read, as a job that ran does (job-pipeline.ts).
   */
  hostFacts?(host: string): HostFactsRecord | undefined;
}

export interface EngineOptions {
  runId: string;
  runDir: string;
  plan: Plan;
  hosts: readonly SchedHost[];
  /** Builds the executor once the journal is open. */
  executor: (journal: Journal) => JobExecutor;
  hooks: RunHooks;
  resume: boolean;
  quarantine?: QuarantineList;
  reporter?: Reporter;
  scheduler?: Omit<SchedulerOptions, 'attemptsSoFar' | 'hostsOut'>;
  /** Wall clock for the summary's times (simulated runs pass their own). */
  nowIso?: () => string;
  log?: (line: string) => void;
  /** Set by the caller to stop the run (signals). */
  stopSignal?: AbortSignal;
  benchVersion?: string;
  /** Sees the scheduler once it exists (benchmarks sample its stats). */
  observe?: (s: Scheduler) => void;
}

export interface EngineResult {
  summary: RunSummary | undefined;
  outcome: SummaryOutcome | undefined;
  /** False when the run was stopped before every job had a result. */
  complete: boolean;
  journal: JournalState;
  scheduler: Scheduler;
  swept: number;
}

export async function runEngine(o: EngineOptions): Promise<EngineResult> {
  const layout = runDirLayout(o.runDir);
  const logRaw = o.log ?? (() => {});
  const log = (line: string): void => logRaw(redact(line));
  const now = o.nowIso ?? (() => nowIso());
  mkdirSync(layout.dir, { recursive: true });
  mkdirSync(layout.jobsDir, { recursive: true });

  const { journal, state } = Journal.open(layout.journal);
  try {
    if (!o.resume && state.runId !== undefined) {
      throw new InputError(`run directory ${layout.dir} already holds run ${state.runId}`, { file: layout.journal }, { hint: 'resume it with --resume, or pick another --out' });
    }
    if (o.resume && state.planDigest !== undefined && state.planDigest !== o.plan.digest) {
      throw new InputError(`the plan changed since run ${state.runId} started (digest ${state.planDigest}, now ${o.plan.digest})`, { file: layout.plan }, { hint: 'resume with the same lab, templates, scenarios and matrix' });
    }
    if (existsSync(layout.plan)) {
      const old = JSON.parse(readFileSync(layout.plan, 'utf8')) as { digest?: string };
      if (old.digest !== o.plan.digest && state.runId !== undefined) throw new InputError('plan.json does not match the journal\'s plan', { file: layout.plan });
    }
    writeFileAtomicSync(layout.plan, planJson(o.plan));
    journal.append({ t: 'run', runId: o.runId, planDigest: o.plan.digest, at: now(), pid: process.pid, resumed: state.runId !== undefined });
    // Invariant: a journal write that fails (a full disk) stops the run; it never escapes
    // a scheduler callback, where it would crash the process with the run half-recorded.
    let fatal: InfraError | undefined;
    let stopForFatal: () => void = () => {};
    const failWith = (e: unknown): void => {
      fatal ??= isBenchError(e) && e.exitCode === 3 ? (e as InfraError) : new InfraError(`cannot write the journal: ${(e as Error).message}`, { cause: e });
      stopForFatal();
    };
    const record = (r: JournalRecord): boolean => {
      if (fatal) return false;
      try {
        journal.append(r);
        return true;
      } catch (e) {
        failWith(e);
        return false;
      }
    };
    const startedAt = state.startedAt ?? now();

    // A resumed run first removes whatever the crashed one left behind: the traces its
    // killed attempts were writing (never renamed, so never evidence), and its VMs.
    if (state.runId !== undefined) removePartials(layout.jobsDir);
    let swept = await sweepAll(o, state.liveVms, state.keptVms, journal, log);

    const hostsOut = new Map(state.hostsOut);
    if (o.hooks.preflight) {
      for (const [h, why] of await o.hooks.preflight(o.hosts.filter((x) => !hostsOut.has(x.name)))) {
        hostsOut.set(h, why);
        record({ t: 'host-out', host: h, reason: why, at: now() });
        log(`host ${h} is out of the run: ${why}`);
      }
    }

    // A result that was an error only because the disk was full runs again (journal.ts).
    const results = keptResults(state);
    const resumed = results.size;
    o.reporter?.onRunBegin?.({ runId: o.runId, lab: o.plan.lab, jobs: o.plan.jobs });
    // Jobs the plan found not applicable (attach mode) end skipped at once, with the reason.
    for (const job of o.plan.jobs) {
      if (job.notApplicable === undefined || results.has(job.jobId)) continue;
      const facts = o.hooks.hostFacts?.(job.host);
      const result: JobResult = {
        jobId: job.jobId, host: job.host, hostBuild: facts?.osBuild ?? job.hostBuild, guest: job.guest, template: job.template, scenario: job.scenario, seed: job.seed,
        attach: job.attach, verdict: 'skipped', message: `not applicable: ${job.notApplicable}`, durationsMs: {}, evidence: {},
        ...(facts ? { hostFacts: facts } : {}),
      };
      results.set(job.jobId, result);
      journal.append({ t: 'end', jobId: job.jobId, result, at: now() });
      o.reporter?.onJobEnd?.(job, result);
    }
    const todo = o.plan.jobs.filter((j) => !results.has(j.jobId));
    if (resumed > 0) log(`resuming run ${o.runId}: ${results.size} job(s) already done, ${todo.length} to go`);
    const quarantine = o.quarantine ?? NO_QUARANTINE;

    const executor = o.executor(journal);
    const scheduler = new Scheduler(o.hosts, todo, executor, {
      onAttempt: (job, attempt, lease) => {
        record({ t: 'attempt', jobId: job.jobId, attempt, hosts: lease.hosts, at: now() });
        o.reporter?.onJobBegin?.(job);
      },
      onAttemptFailed: (job, attempt, host, retry, unsafe) => {
        const message = redact(unsafe);
        record({ t: 'attempt-failed', jobId: job.jobId, attempt, host, retry, message, at: now() });
        log(`${job.jobId}: attempt ${attempt} failed${host ? ` on ${host}` : ''}: ${message}${retry ? ' (retrying)' : ''}`);
      },
      onHostOut: (host, reason) => {
        record({ t: 'host-out', host, reason, at: now() });
        log(`host ${host} is out of the run: ${reason}`);
      },
      onResult: (job, raw) => {
        const result = redacted(withQuarantine(raw, job, quarantine, startedAt));
        if (results.has(job.jobId)) return; // exactly once, even if an executor misbehaves
        // An error that only says the disk is full is not the job's result: the run stops
        // and the job stays without one, so a resume runs it again.
        if (isDiskFullResult(result)) return failWith(diskFullError(layout.journal, new Error(result.message)));
        if (!record({ t: 'end', jobId: job.jobId, result, at: now() })) return;
        results.set(job.jobId, result);
        o.reporter?.onJobEnd?.(job, result);
      },
    }, { ...o.scheduler, attemptsSoFar: state.attempts, hostsOut });

    stopForFatal = () => scheduler.stop(fatal?.message ?? 'stopped');
    o.observe?.(scheduler);
    const onStop = () => scheduler.stop('the run was stopped');
    if (o.stopSignal?.aborted) onStop();
    o.stopSignal?.addEventListener('abort', onStop, { once: true });
    try {
      await scheduler.run();
    } finally {
      o.stopSignal?.removeEventListener('abort', onStop);
    }

    // Idle VMs go in parallel across hosts, one after another on each host.
    const byHost = Map.groupBy(scheduler.idleVms(), (vm) => vm.host);
    await Promise.all([...byHost.values()].map(async (vms) => {
      for (const vm of vms) await executor.dropIdleVm(vm).catch(() => undefined);
    }));
    const after = Journal.open(layout.journal);
    after.journal.close();
    // Always, not only for VMs the journal still lists: a removal that reported success
    // but left the VM (or a VM made by a step the journal did not see) is found by its tag.
    swept += await sweepAll(o, after.state.liveVms, after.state.keptVms, journal, log, true);

    // A full disk's message ends in "--resume": name the run to resume.
    if (fatal) throw fatal.message.endsWith('--resume') ? new InfraError(`${fatal.message} ${o.runId}`, { cause: fatal.cause }) : fatal;
    const complete = o.plan.jobs.every((j) => results.has(j.jobId));
    if (!complete) {
      log(`run ${o.runId} stopped with ${o.plan.jobs.length - results.size} job(s) left; resume with --resume ${o.runId}`);
      return { summary: undefined, outcome: undefined, complete, journal: after.state, scheduler, swept };
    }
    const summary: RunSummary = {
      version: 1, runId: o.runId, lab: o.plan.lab, startedAt, finishedAt: now(),
      ...(o.benchVersion ? { benchVersion: o.benchVersion } : {}),
      jobs: o.plan.jobs.map((j) => results.get(j.jobId)!),
    };
    await o.reporter?.onRunEnd?.(summary);
    if (!record({ t: 'run-end', at: now() })) throw fatal!;
    return { summary, outcome: summarize(summary.jobs, startedAt), complete, journal: after.state, scheduler, swept };
  } finally {
    journal.close();
  }
}

/** Sweeps every host for the run's VMs when the journal lists any still there (or `always`), keeping kept ones. */
async function sweepAll(o: EngineOptions, live: ReadonlyMap<string, VmEntry>, kept: readonly VmEntry[], journal: Journal, log: (l: string) => void, always = false): Promise<number> {
  if (live.size === 0 && !always) return 0;
  const keep = new Set(kept.map((k) => k.key));
  let removed = 0;
  let failed = false;
  // Every host, not only the ones the VMs were made on: a migration may have moved one.
  for (const h of o.hosts) {
    try {
      removed += await o.hooks.sweepHost(h.name, keep);
    } catch (e) {
      failed = true;
      log(`could not sweep the run's VMs on ${h.name}: ${(e as Error).message}; run bench lab cleanup --run ${o.runId}`);
    }
  }
  if (!failed) for (const vm of live.values()) journal.append({ t: 'vm-gone', key: vm.key, at: nowIso() });
  return removed;
}

/**
 * A result as the journal and every report get it: its messages through the redactor,
 * which knows every secret read and drops the key bytes ssh2 quotes (lab/secrets.ts).
 * Invariant: nothing an executor says reaches the journal unredacted.
 */
function redacted(r: JobResult): JobResult {
  // The scheduler may add the failed attempts' messages (not part of the summary's type).
  const earlier = (r as { attemptErrors?: string[] }).attemptErrors;
  if (r.message === undefined && earlier === undefined) return r;
  return {
    ...r,
    ...(r.message !== undefined ? { message: redact(r.message) } : {}),
    ...(earlier !== undefined ? { attemptErrors: earlier.map(redact) } : {}),
  } as JobResult;
}

function withQuarantine(r: JobResult, job: PlannedJob, q: QuarantineList, asOf: string): JobResult {
  const hit = quarantineFor(q, { scenario: job.scenario, host: r.host, template: job.template, partner: job.partner }, asOf);
  return hit ? { ...r, quarantined: hit } : r;
}

/**
 * Temp file, fsync, rename: synchronous so that no real I/O is in flight while the run
 * is scheduling (a simulated clock would otherwise move on under it).
 */
function writeFileAtomicSync(target: string, text: string): void {
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw isDiskFull(e) ? diskFullError(target, e) : new InfraError(`cannot write ${target}: ${(e as Error).message}`, { cause: e });
  }
}

/** Removes `<jobs>/<job>/*.partial`: what attempts killed mid-write left (the writers rename whole files). */
function removePartials(jobsDir: string): void {
  for (const job of readdirSync(jobsDir, { withFileTypes: true })) {
    if (!job.isDirectory()) continue;
    const dir = join(jobsDir, job.name);
    for (const f of readdirSync(dir)) if (f.endsWith('.partial')) rmSync(join(dir, f), { force: true });
  }
}
