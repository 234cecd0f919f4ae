// The layout of a run directory, `results/<run-id>/` (DESIGN.md, "Runs and results"),
// named in one place so the run layer, the reporters and `bench report` agree:
//
//   plan.json        the plan (src/run), a pure function of inventory x scenarios x matrix
//   journal.jsonl    crash-safe journal (src/run), one line per job event, append + fsync
//   jobs/<job-id>/   per-job traces (host, guest, bench) and host artefacts
//   summary.json     the run's results (summary.ts), written once at the end
//   junit.xml        for CI test reporters (junit-reporter.ts)
//   report.html      the compatibility report for people (html-reporter.ts)
//
// The history index across runs lives beside the run directories, in the results root:
// `results/history.sqlite` (history.ts). Evidence paths in summary.json are relative to
// the run directory.
import { basename, dirname, join, resolve } from 'node:path';

export interface RunDirLayout {
  dir: string;
  runId: string;
  plan: string;
  journal: string;
  jobsDir: string;
  summary: string;
  junit: string;
  report: string;
}

export const SUMMARY_FILE = 'summary.json';
export const JUNIT_FILE = 'junit.xml';
export const REPORT_FILE = 'report.html';
export const HISTORY_FILE = 'history.sqlite';

export function runDirLayout(dir: string): RunDirLayout {
  const abs = resolve(dir);
  return {
    dir: abs,
    runId: basename(abs),
    plan: join(abs, 'plan.json'),
    journal: join(abs, 'journal.jsonl'),
    jobsDir: join(abs, 'jobs'),
    summary: join(abs, SUMMARY_FILE),
    junit: join(abs, JUNIT_FILE),
    report: join(abs, REPORT_FILE),
  };
}

/** Where a job's evidence goes: `jobs/<job-id>/` (job ids are file-name safe, summary.ts). */
export function jobDir(runDir: string, jobId: string): string {
  return join(resolve(runDir), 'jobs', jobId);
}

/** The history index used for a run directory unless the caller names another. */
export function defaultHistoryPath(runDir: string): string {
  return join(dirname(resolve(runDir)), HISTORY_FILE);
}
