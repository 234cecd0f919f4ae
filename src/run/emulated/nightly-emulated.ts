// The emulated nightly: every job of an emulated lab's plan on the lab run engine
// (engine.ts), with the emulator worker pool as its executor (emulated-engine.ts) and the
// report layer's reporters. One engine for real and emulated labs: the same plan, the
// same crash-safe journal, the same scheduler and retries.
//
//   results/<run-id>/plan.json        planned first (plan.ts), checked again on --resume
//   results/<run-id>/journal.jsonl    one fsynced line per state change (journal.ts)
//   results/<run-id>/jobs/<job>/emulator.jsonl   each job's trace
//   results/<run-id>/summary.json, junit.xml, report.html   from the reporters, at the end
//   results/history.sqlite            brought up to date with this run
//
// The stop signal lets running jobs finish and be recorded; the rest stay for --resume.
// `resume` finishes a run: jobs with a result in the journal keep it and are not run
// again; every other planned job runs now. The plan is made again from the lab file and
// its scenarios, and the engine refuses it if it is not the plan the run started with.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { InfraError, InputError, isBenchError } from '../../errors.ts';
import { openHistory } from '../../report/history.ts';
import type { ListReporterOptions } from '../../report/list-reporter.ts';
import { createReporters, RUN_REPORTERS, type ReporterFactory, type ReporterName, REPORTERS } from '../../report/registry.ts';
import { describeFailure, ReporterMultiplexer, type Reporter, type ReporterFailure } from '../../report/reporter.ts';
import { defaultHistoryPath, runDirLayout } from '../../report/run-dir.ts';
import type { RunSummary, SummaryOutcome } from '../../report/summary.ts';
import { loadScenarioPaths } from '../../scenario/loader.ts';
import type { EmulatedLab } from './emulated-lab.ts';
import { EmulatedExecutor, emulatedEngineInputs } from './emulated-engine.ts';
import { runEngine } from '../engine/engine.ts';
import { foldJournal, keptResults, readJournal } from '../engine/journal.ts';
import type { PlannedJob } from '../engine/plan.ts';
import { WorkerPool } from '../workers/worker-pool.ts';
import type { FaultMode } from '../../vmbus/faults.ts';
import { acquireRunLock } from '../engine/run-lock.ts';

export interface NightlyOptions {
  lab: EmulatedLab;
  /** The results root; the run directory is `<outRoot>/<run-id>`. */
  outRoot: string;
  /** Finish this run instead of starting a new one. */
  resume?: string | undefined;
  /** The id of a new run (`--run-id`); by default its start time. */
  runId?: string | undefined;
  workers?: number | undefined;
  /**
   * Platform bugs every job imitates (vmbus/faults.ts), to watch the bench catch them.
   * Kept in the run directory as `faults.json`, so a resume runs its jobs with the same ones.
   */
  faults?: readonly FaultMode[] | undefined;
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

const BENCH_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function runEmulatedNightly(opts: NightlyOptions): Promise<NightlyResult> {
  const now = opts.now ?? (() => new Date());
  const warn = opts.onWarning ?? (() => {});
  const outRoot = resolve(opts.outRoot);
  // Loaded first: a lab whose scenarios are bad leaves no run directory behind.
  const scenarios = await loadScenarioPaths(opts.lab.scenarioPaths, { defaultDevice: opts.lab.device, from: { file: opts.lab.file, field: 'device' } });
  // One run per lab and results folder at a time, resumes included (run-lock.ts): taken
  // before the run directory is made or reopened, and held until the reports are written.
  if (opts.runId !== undefined && !/^[\w@+=-][\w.@+=-]*$/.test(opts.runId)) throw new InputError(`--run-id: "${opts.runId}" cannot name a folder; use letters, digits, . _ - @ + =`);
  const lockRunId = opts.resume ?? opts.runId ?? newRunId(now());
  const lock = acquireRunLock(outRoot, opts.lab.name, lockRunId, { onNote: warn });
  try {
    return await runLocked(opts, scenarios, outRoot, lockRunId, now, warn);
  } finally {
    lock.release();
  }
}

async function runLocked(
  opts: NightlyOptions, scenarios: Awaited<ReturnType<typeof loadScenarioPaths>>, outRoot: string, newId: string, now: () => Date, warn: (m: string) => void,
): Promise<NightlyResult> {
  const { runId, layout, done } = opts.resume !== undefined
    ? await reopenRun(opts.lab, outRoot, opts.resume)
    : await startRun(outRoot, newId);
  const faults = await runFaults(layout.dir, opts.resume !== undefined, opts.faults ?? []);
  const recorded = done.size;
  const pool = new WorkerPool({ size: opts.workers, workerUrl: opts.workerUrl });
  const { plan, hosts } = emulatedEngineInputs(opts.lab, scenarios, pool.size);

  const mux = new ReporterMultiplexer(
    createReporters(opts.reporters ?? RUN_REPORTERS, { runDir: layout.dir, terminal: terminal(opts.terminal, layout), onWarning: warn }, opts.factories ?? REPORTERS),
    (f) => warn(describeFailure(f)),
  );
  let engine;
  try {
    engine = await runEngine({
      runId, runDir: layout.dir, plan, hosts, resume: opts.resume !== undefined,
      reporter: progress(mux, plan.jobs.filter((j) => !done.has(j.jobId))), scheduler: { placement: 'pinned' },
      // No VMs in an emulated lab: nothing to sweep.
      hooks: { sweepHost: async () => 0 },
      executor: () => new EmulatedExecutor(pool, opts.lab, scenarios, layout.dir, faults),
      nowIso: () => now().toISOString(), log: (line) => { if (!ownLine(line, runId)) warn(line); }, stopSignal: opts.signal, benchVersion: BENCH_VERSION,
    });
  } finally {
    await pool.close();
  }
  if (!engine.complete || !engine.summary || !engine.outcome) {
    throw new InfraError(`run ${runId} interrupted with ${plan.jobs.length - engine.journal.results.size} job(s) not run; finish it with --resume ${runId}`);
  }
  await indexRun(layout.dir, warn);
  return {
    runId, runDir: layout.dir, summary: engine.summary, outcome: engine.outcome,
    ran: plan.jobs.length - recorded, recorded, reporterFailures: mux.failures,
  };
}

interface OpenRun {
  runId: string;
  layout: ReturnType<typeof runDirLayout>;
  /** Jobs the journal already holds a result for. */
  done: ReadonlySet<string>;
}

async function startRun(outRoot: string, runId: string): Promise<OpenRun> {
  const layout = runDirLayout(join(outRoot, runId));
  try {
    await mkdir(outRoot, { recursive: true });
    // Not recursive: a run directory that already exists is never reused.
    await mkdir(layout.dir);
  } catch (e) {
    if (isBenchError(e)) throw e;
    throw new InfraError(`cannot create run directory ${layout.dir}: ${(e as Error).message}`, { cause: e });
  }
  return { runId, layout, done: new Set() };
}

async function reopenRun(lab: EmulatedLab, outRoot: string, runId: string): Promise<OpenRun> {
  if (!/^[\w@+=-][\w.@+=-]*$/.test(runId)) throw new InputError(`--resume: "${runId}" is not a run id (a folder name in ${outRoot})`);
  const layout = runDirLayout(join(outRoot, runId));
  // Checked here, not left to the engine: it would start a new run in an empty directory.
  let plannedLab: unknown;
  try {
    plannedLab = (JSON.parse(readFileSync(layout.plan, 'utf8')) as { lab?: unknown }).lab;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no plan.json here: is this a run directory?' : `cannot read plan.json: ${(e as Error).message}`, { file: layout.plan });
  }
  if (plannedLab !== lab.name) {
    throw new InputError(`run ${runId} was planned for lab "${String(plannedLab)}", not "${lab.name}"`, { file: lab.file, field: 'name' }, { hint: 'resume it with the lab file it was started with' });
  }
  if (!existsSync(layout.journal)) throw new InputError('no journal.jsonl here, so the run cannot be resumed', { file: layout.journal });
  const state = foldJournal(readJournal(layout.journal).records);
  if (state.runId === undefined) throw new InputError('the journal is empty (the run died before it started); start a new run', { file: layout.journal });
  // Results of the interrupted attempt are stale; the reporters write them anew at the end.
  await Promise.all([layout.summary, layout.junit, layout.report].map((f) => rm(f, { force: true })));
  // Results the full disk caused are not kept: those jobs run again (journal.ts).
  return { runId, layout, done: new Set(keptResults(state).keys()) };
}

/**
 * The faults a run's jobs imitate. A new run records them (when there are any); a resume
 * takes the recorded ones, and refuses a different `--fault`: one run, one set of faults.
 */
async function runFaults(runDir: string, resume: boolean, given: readonly FaultMode[]): Promise<readonly FaultMode[]> {
  const file = join(runDir, 'faults.json');
  if (!resume) {
    if (given.length > 0) await writeFile(file, `${JSON.stringify(given)}\n`);
    return given;
  }
  const recorded: FaultMode[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FaultMode[]) : [];
  if (given.length > 0 && [...given].sort().join(',') !== [...recorded].sort().join(',')) {
    throw new InputError(`--fault ${given.join(',')}: this run was started with ${recorded.length > 0 ? `--fault ${recorded.join(',')}` : 'no fault'}; resume it without --fault`);
  }
  return recorded;
}

/** The engine's stop and resume lines: the nightly says both itself (its error, the CLI's resume line). */
function ownLine(line: string, runId: string): boolean {
  return line.startsWith(`run ${runId} stopped with `) || line.startsWith(`resuming run ${runId}:`);
}

/** `2026-11-24T03-53-00Z-7f3a`: the start time in UTC, file-name safe, and a suffix for runs started in the same second. */
export function newRunId(now: Date): string {
  return `${now.toISOString().slice(0, 19).replace(/:/g, '-')}Z-${randomBytes(2).toString('hex')}`;
}

/**
 * The reporters as the terminal progress wants them: the run's size is the jobs still to
 * run (a resume's recorded jobs are not run again), and a job retried on another worker
 * begins once (the engine tells of every attempt).
 */
function progress(mux: ReporterMultiplexer, todo: readonly PlannedJob[]): Reporter {
  const begun = new Set<string>();
  return {
    onRunBegin: (p) => mux.onRunBegin({ ...p, jobs: [...todo] }),
    onJobBegin: (job) => {
      if (begun.has(job.jobId)) return;
      begun.add(job.jobId);
      mux.onJobBegin(job);
    },
    onJobEnd: (job, result) => mux.onJobEnd(job, result),
    onRunEnd: (summary) => mux.onRunEnd(summary),
  };
}

/** The terminal reporter's closing lines point at the report and junit.xml of this run. */
function terminal(t: ListReporterOptions | undefined, layout: ReturnType<typeof runDirLayout>): ListReporterOptions | undefined {
  return t && { ...t, files: t.files ?? [layout.report, layout.junit], runDir: t.runDir ?? layout.dir };
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
