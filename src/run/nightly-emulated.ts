// The emulated nightly: every job of an emulated lab's plan on the emulator worker pool,
// with a crash-safe journal and the report layer's reporters.
//
//   results/<run-id>/plan.json        planned first (emulated-plan.ts)
//   results/<run-id>/journal.jsonl    one fsynced line per job state change (run-journal.ts)
//   results/<run-id>/traces/<job>.jsonl
//   results/<run-id>/summary.json, junit.xml, report.html   from the reporters, at the end
//   results/history.sqlite            brought up to date with this run
//
// Jobs start only when a worker is free (one runner per worker pulls from the queue), so
// onJobBegin and the journal's job-begin mean "running", not "queued". The stop signal is
// checked before each job is taken; jobs already running finish and are recorded.
// `resume` finishes a run: jobs with a job-end line keep their recorded result and are
// not run again; every other planned job runs now.
import { mkdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InfraError, InputError, isBenchError } from '../errors.ts';
import { openHistory } from '../report/history.ts';
import type { ListReporterOptions } from '../report/list-reporter.ts';
import { createReporters, RUN_REPORTERS, type ReporterFactory, type ReporterName, REPORTERS } from '../report/registry.ts';
import { describeFailure, ReporterMultiplexer, type ReporterFailure } from '../report/reporter.ts';
import { defaultHistoryPath, runDirLayout } from '../report/run-dir.ts';
import { summarize, type JobResult, type RunSummary, type SummaryOutcome } from '../report/summary.ts';
import { loadScenarioPaths } from '../scenario/loader.ts';
import type { EmulatedLab } from './emulated-lab.ts';
import { newRunId, planEmulatedRun, readPlan, writePlan, type EmulatedPlan, type PlannedJob } from './emulated-plan.ts';
import { readJournal, RunJournal } from './run-journal.ts';
import { WorkerPool } from './worker-pool.ts';
import type { EmulatedJobOutcome } from './worker-protocol.ts';

export interface NightlyOptions {
  lab: EmulatedLab;
  /** The results root; the run directory is `<outRoot>/<run-id>`. */
  outRoot: string;
  /** Finish this run instead of starting a new one. */
  resume?: string | undefined;
  workers?: number | undefined;
  /** The emulator worker entry (tests substitute a misbehaving one). */
  workerUrl?: URL | undefined;
  terminal?: ListReporterOptions | undefined;
  reporters?: readonly ReporterName[] | undefined;
  factories?: Readonly<Record<string, ReporterFactory>> | undefined;
  signal?: AbortSignal | undefined;
  now?: () => Date;
  onWarning?: (message: string) => void;
}

export interface NightlyResult {
  runId: string;
  runDir: string;
  summary: RunSummary;
  outcome: SummaryOutcome;
  /** Jobs run now, and jobs whose result came from the journal (resume). */
  ran: number;
  recorded: number;
  reporterFailures: ReporterFailure[];
}

const BENCH_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function runEmulatedNightly(opts: NightlyOptions): Promise<NightlyResult> {
  const now = opts.now ?? (() => new Date());
  const warn = opts.onWarning ?? (() => {});
  const outRoot = resolve(opts.outRoot);
  const { plan, layout, journal, done, startedAt } = opts.resume !== undefined
    ? await reopenRun(opts.lab, outRoot, opts.resume, now)
    : await startRun(opts.lab, outRoot, now);

  const mux = new ReporterMultiplexer(
    createReporters(opts.reporters ?? RUN_REPORTERS, { runDir: layout.dir, terminal: terminal(opts.terminal, layout), onWarning: warn }, opts.factories ?? REPORTERS),
    (f) => warn(describeFailure(f)),
  );
  const results = new Map(done);
  const remaining = plan.jobs.filter((j) => !done.has(j.jobId));
  const scenarios = new Map(plan.scenarios.map((s) => [s.name, s]));
  mux.onRunBegin({ runId: plan.runId, lab: plan.lab, jobs: remaining });

  const pool = new WorkerPool({ size: opts.workers, workerUrl: opts.workerUrl });
  try {
    const queue = [...remaining];
    const runner = async (): Promise<void> => {
      // Checked before each job is taken: a stop leaves the rest queued for --resume.
      while (!opts.signal?.aborted) {
        const job = queue.shift();
        if (!job) return;
        journal.append({ type: 'job-begin', jobId: job.jobId, at: now().toISOString() });
        mux.onJobBegin(job);
        const result = await runJob(pool, job, scenarios, layout.dir);
        journal.append({ type: 'job-end', jobId: job.jobId, at: now().toISOString(), result });
        results.set(job.jobId, result);
        mux.onJobEnd(job, result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(pool.size, Math.max(1, remaining.length)) }, runner));
  } catch (e) {
    journal.close();
    throw e;
  } finally {
    await pool.close();
  }
  if (opts.signal?.aborted) {
    journal.close();
    throw new InfraError(`run ${plan.runId} interrupted with ${plan.jobs.length - results.size} job(s) not run; finish it with --resume ${plan.runId}`);
  }

  const summary: RunSummary = {
    version: 1,
    runId: plan.runId,
    lab: plan.lab,
    startedAt,
    finishedAt: now().toISOString(),
    benchVersion: BENCH_VERSION,
    jobs: plan.jobs.map((j) => results.get(j.jobId)!),
  };
  await mux.onRunEnd(summary);
  const outcome = summarize(summary.jobs, summary.startedAt);
  journal.append({ type: 'run-end', at: now().toISOString(), exitCode: outcome.exitCode });
  journal.close();
  await indexRun(layout.dir, warn);
  return { runId: plan.runId, runDir: layout.dir, summary, outcome, ran: remaining.length, recorded: done.size, reporterFailures: mux.failures };
}

interface OpenRun {
  plan: EmulatedPlan;
  layout: ReturnType<typeof runDirLayout>;
  journal: RunJournal;
  done: Map<string, JobResult>;
  startedAt: string;
}

async function startRun(lab: EmulatedLab, outRoot: string, now: () => Date): Promise<OpenRun> {
  const scenarios = await loadScenarioPaths(lab.scenarioPaths);
  const started = now();
  const runId = newRunId(started);
  const layout = runDirLayout(join(outRoot, runId));
  const plan = planEmulatedRun(lab, scenarios, runId);
  try {
    await mkdir(outRoot, { recursive: true });
    await mkdir(layout.dir);
    await mkdir(join(layout.dir, 'traces'));
    await writePlan(layout.plan, plan);
  } catch (e) {
    if (isBenchError(e)) throw e;
    throw new InfraError(`cannot create run directory ${layout.dir}: ${(e as Error).message}`, { cause: e });
  }
  const journal = RunJournal.create(layout.journal);
  const startedAt = started.toISOString();
  journal.append({ type: 'run-begin', runId, startedAt, at: startedAt });
  return { plan, layout, journal, done: new Map(), startedAt };
}

async function reopenRun(lab: EmulatedLab, outRoot: string, runId: string, now: () => Date): Promise<OpenRun> {
  if (!/^[\w@+=-][\w.@+=-]*$/.test(runId)) throw new InputError(`--resume: "${runId}" is not a run id (a folder name in ${outRoot})`);
  const layout = runDirLayout(join(outRoot, runId));
  const plan = await readPlan(layout.plan);
  if (plan.lab !== lab.name) {
    throw new InputError(`run ${runId} was planned for lab "${plan.lab}", not "${lab.name}"`, { file: lab.file, field: 'name' }, { hint: `resume it with the lab file it was started with (${plan.labFile})` });
  }
  const state = readJournal(layout.journal);
  const planned = new Set(plan.jobs.map((j) => j.jobId));
  for (const id of state.done.keys()) {
    if (!planned.has(id)) throw new InputError(`the journal records job ${id}, which is not in plan.json`, { file: layout.journal });
  }
  const journal = RunJournal.reopen(layout.journal, state.completeBytes);
  journal.append({ type: 'run-resume', at: now().toISOString() });
  // Results of the interrupted attempt are stale; the reporters write them anew at the end.
  await Promise.all([layout.summary, layout.junit, layout.report].map((f) => rm(f, { force: true })));
  return { plan, layout, journal, done: state.done, startedAt: state.startedAt };
}

async function runJob(pool: WorkerPool, job: PlannedJob, scenarios: ReadonlyMap<string, EmulatedPlan['scenarios'][number]>, runDir: string): Promise<JobResult> {
  const { choices: _choices, trace, ...spec } = job;
  const scenario = scenarios.get(job.scenario);
  if (!scenario) return { ...spec, verdict: 'error', message: `plan.json has no scenario named ${job.scenario}`, durationsMs: {}, evidence: {}, attempts: 1 };
  const started = performance.now();
  let out: EmulatedJobOutcome;
  try {
    out = await pool.run({ kind: 'emulated-job', jobId: job.jobId, scenario, seed: job.seed, choices: job.choices, traceFile: join(runDir, trace) });
  } catch (e) {
    // The job could not be judged (a worker died, the trace could not be written): an error, not a verdict.
    return { ...spec, verdict: 'error', message: (e as Error).message.split('\n')[0], durationsMs: { emulator: Math.round(performance.now() - started) }, evidence: {}, attempts: 1 };
  }
  return {
    ...spec,
    verdict: out.verdict,
    divergenceClass: out.divergenceClass,
    message: out.message,
    failedProperties: out.failedProperties,
    firstUnexplained: out.firstViolation ? { file: trace, line: out.firstViolation.line, event: out.firstViolation.event } : undefined,
    timeline: out.timeline,
    durationsMs: { emulator: out.emulatorMs },
    evidence: { trace },
    attempts: 1,
  };
}

/** The terminal reporter's closing lines point at the report and junit.xml of this run. */
function terminal(t: ListReporterOptions | undefined, layout: ReturnType<typeof runDirLayout>): ListReporterOptions | undefined {
  return t && { ...t, files: t.files ?? [layout.report, layout.junit] };
}

/** Brings the history index beside the run directory up to date, so this run is in it. */
async function indexRun(runDir: string, warn: (m: string) => void): Promise<void> {
  const path = defaultHistoryPath(runDir);
  try {
    const opened = await openHistory(path, dirname(runDir));
    opened.warnings.forEach(warn);
    opened.history.close();
  } catch (e) {
    warn(`history index ${path} not updated: ${(e as Error).message}`);
  }
}
