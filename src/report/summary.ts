// The result of one run: what `summary.json` holds, and the pure `summarize` that turns
// job results into counts and the run's exit code.
//
// summary.json (written by the json reporter at the end of a run, read by `bench report`)
// ---------------------------------------------------------------------------------------
// {
//   "version": 1,
//   "runId": "2026-11-24T0300-nightly",     // also the name of the run directory
//   "lab": "lab-east",                      // inventory name, or "emulator" for emulated runs
//   "startedAt":  "2026-11-24T03:00:00Z",   // ISO 8601 with a zone
//   "finishedAt": "2026-11-24T03:41:10Z",
//   "benchVersion": "0.1.0",                // optional
//   "jobs": [ JobResult, ... ]
// }
//
// JobResult: one job = one scenario run once on one host / guest / template with one seed.
//   jobId        unique in the run; letters, digits and . _ - @ + = only, not starting with
//                a dot (it names the job's evidence folder and its anchor in report.html)
//   host         host machine name as in the inventory ("hv-01"); "emulator" when emulated
//   hostBuild    Windows build of that host ("10.0.26100.1742"): a matrix column
//   guest        guest OS ("ubuntu-24.04"): a matrix table
//   template     VM template name
//   scenario     scenario name: a matrix row
//   seed         schedule seed (integer)
//   verdict      'pass' | 'diverge' | 'error' | 'hang' | 'skipped'
//                  diverge = the checker found an unexplained event (a result, exit 1)
//                  hang    = the run stopped making progress (a result, exit 1)
//                  error   = the job could not be judged: infrastructure (exit 3 if alone)
//                  skipped = not run (filtered out, dependency failed); `message` says why
//   divergenceClass  for diverge / hang: lost, duplicated, spurious, payload, status,
//                    not-saved, not-restored, savebuf-mismatch, state-order, missing-event,
//                    hang (DESIGN.md, "Differential checking"); other strings are accepted
//   message      one line a person reads first (the divergence message, the error, why skipped)
//   failedProperties  names of the trace properties that failed (src/trace/TRACE-SCHEMA.md)
//   notChecked   what the check of this job left out, one sentence each: set when only the
//                device-independent properties were checked (a device the model does not
//                know), so payload and status rules were not
//   firstUnexplained  { file, line, event }: the first real event the model could not
//                explain; file is relative to the run directory, line is 1-based
//   expected     what the model would have accepted there, one string per alternative
//   timeline     trace events around the divergence (TraceEvent, schema v1), in order;
//                firstUnexplained.event is expected to be one of them (matched by seq)
//   durationsMs  { emulator?, real?, check? } wall time of each part, milliseconds
//   evidence     { trace?, hostTrace?, guestTrace?, minimizedScenario?, artefacts?: [] }
//                paths relative to the run directory
//   attempts     how many times the job ran (retries after infrastructure errors); default 1
//   quarantined  { reason, until }: a known problem; its failure does not fail the run
//                until `until` (ISO date) has passed
//   reproduce    { scenarioFile?, choices?, faults? }: what a person needs to run the job
//                again: the scenario's file as the run read it, the documented-gap choices
//                the model ran with (key -> value), the fault modes injected (`--fault NAME`)
//
// Unknown fields are ignored when reading, so producers may add fields freely; the ones
// above keep their meaning. The zod schema that checks this shape is in summary-schema.ts.
import type { TraceEvent } from '../trace/schema.ts';
import type { ExitCode } from '../errors.ts';

export const SUMMARY_VERSION = 1;

export type Verdict = 'pass' | 'diverge' | 'error' | 'hang' | 'skipped';
export const VERDICTS: readonly Verdict[] = ['pass', 'diverge', 'error', 'hang', 'skipped'];

/** What identifies a job; the plan knows this before the job runs. */
export interface JobSpec {
  jobId: string;
  host: string;
  hostBuild: string;
  guest: string;
  template: string;
  scenario: string;
  seed: number;
  /** How the VSP reached its peer (src/lab/attach.ts): the client in the host, or a VM. */
  attach?: 'loopback' | 'vm-handle' | undefined;
  /** The name of the scenario's device module (src/device-api); the matrix groups its rows by it. */
  device?: string | undefined;
}

export interface FirstUnexplained {
  file: string;
  line: number;
  event: TraceEvent;
}

export interface Evidence {
  trace?: string | undefined;
  hostTrace?: string | undefined;
  guestTrace?: string | undefined;
  minimizedScenario?: string | undefined;
  artefacts?: string[] | undefined;
}

export interface JobResult extends JobSpec {
  verdict: Verdict;
  divergenceClass?: string | undefined;
  message?: string | undefined;
  failedProperties?: string[] | undefined;
  notChecked?: string[] | undefined;
  firstUnexplained?: FirstUnexplained | undefined;
  expected?: string[] | undefined;
  timeline?: TraceEvent[] | undefined;
  durationsMs: { emulator?: number | undefined; real?: number | undefined; check?: number | undefined };
  evidence: Evidence;
  attempts?: number | undefined;
  quarantined?: { reason: string; until: string } | undefined;
  reproduce?: Reproduce | undefined;
  /**
   * What the bench read from the job's host (src/lab/host-facts.ts): `hostBuild` above is
   * the build read when there is one; `label` is the inventory's, `warning` says they differ.
   */
  hostFacts?: HostFactsRecord | undefined;
  /** The driver builds the job ran with (src/lab/deploy-drivers.ts DriverRecord). */
  drivers?: Array<{ name: string; where: 'host' | 'guest'; sha256: string; fileVersion?: string | undefined; sourceCommit?: string | undefined }> | undefined;
}

/** How to run a job again (see `reproduce` above); every part is optional. */
export interface Reproduce {
  scenarioFile?: string | undefined;
  choices?: Record<string, string | boolean> | undefined;
  faults?: string[] | undefined;
}

export interface HostFactsRecord {
  osBuild?: string | undefined;
  hypervVersion?: string | undefined;
  kmclVersion?: string | undefined;
  label?: string | undefined;
  warning?: string | undefined;
  /** The guest's kernel (`uname -r`) or Windows build, for vm-handle jobs. */
  guestOs?: string | undefined;
}

export interface RunSummary {
  version: 1;
  runId: string;
  lab: string;
  startedAt: string;
  finishedAt: string;
  benchVersion?: string | undefined;
  jobs: JobResult[];
}

export interface Counts {
  total: number;
  pass: number;
  diverge: number;
  error: number;
  hang: number;
  skipped: number;
  /** Failing jobs (diverge, hang, error) whose failure is excused by a live quarantine. */
  quarantined: number;
}

export interface SummaryOutcome {
  counts: Counts;
  /** 0 all passed; 1 a divergence or hang not quarantined; 3 infrastructure errors only. */
  exitCode: Exclude<ExitCode, 2>;
}

/** A quarantine excuses a failure while `until` lies ahead of `asOf` (or always, without `asOf`). */
export function isQuarantineLive(job: Pick<JobResult, 'quarantined'>, asOf?: string): boolean {
  if (!job.quarantined) return false;
  if (asOf === undefined) return true;
  const until = Date.parse(job.quarantined.until);
  const at = Date.parse(asOf);
  // An unreadable date cannot prove the quarantine expired; keep excusing rather than flip a build red.
  if (Number.isNaN(until) || Number.isNaN(at)) return true;
  return until >= at;
}

/** Whether a job's verdict is a failure of any kind (ignoring quarantine). */
export function isFailing(v: Verdict): boolean {
  return v === 'diverge' || v === 'hang' || v === 'error';
}

/**
 * Counts verdicts and decides the run's exit code. Pure.
 * `asOf` (usually the run's start) lets expired quarantines stop excusing failures.
 */
export function summarize(jobs: readonly JobResult[], asOf?: string): SummaryOutcome {
  const counts: Counts = { total: jobs.length, pass: 0, diverge: 0, error: 0, hang: 0, skipped: 0, quarantined: 0 };
  let failures = 0;
  let infra = 0;
  for (const job of jobs) {
    counts[job.verdict] += 1;
    if (!isFailing(job.verdict)) continue;
    if (isQuarantineLive(job, asOf)) {
      counts.quarantined += 1;
      continue;
    }
    if (job.verdict === 'error') infra += 1;
    else failures += 1;
  }
  const exitCode = failures > 0 ? 1 : infra > 0 ? 3 : 0;
  return { counts, exitCode };
}

/** Orders verdicts from worst to best, for the one verdict a matrix cell shows. */
const SEVERITY: Readonly<Record<Verdict, number>> = { diverge: 4, hang: 3, error: 2, pass: 1, skipped: 0 };

export function worstVerdict(verdicts: Iterable<Verdict>): Verdict | undefined {
  let worst: Verdict | undefined;
  for (const v of verdicts) if (worst === undefined || SEVERITY[v] > SEVERITY[worst]) worst = v;
  return worst;
}

/** The key of a matrix cell: host build x guest x scenario. */
export interface CellKey {
  hostBuild: string;
  guest: string;
  scenario: string;
}

export function cellId(k: CellKey): string {
  return JSON.stringify([k.hostBuild, k.guest, k.scenario]);
}

/** One line naming a job for people: "save-inflight on hv-01 (10.0.26100) / ubuntu-24.04, seed 7". */
export function describeJob(j: JobSpec): string {
  return `${j.scenario} on ${j.host} (${j.hostBuild}) / ${j.guest} [${j.template}], seed ${j.seed}`;
}
