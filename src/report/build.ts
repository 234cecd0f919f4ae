// What `bench report RUN_DIR` does: read and validate summary.json (bad input stops here,
// before anything is written), bring the history index up to date (rebuilding it when it
// is missing or damaged), then let the summary-derived reporters (junit, html) rewrite
// their files through the multiplexer, so one failing reporter leaves the others' output.
import { dirname } from 'node:path';
import { openHistory } from './history.ts';
import { ReporterMultiplexer, type ReporterFailure } from './reporter.ts';
import { createReporters, REPORTERS, SUMMARY_DERIVED_REPORTERS, type ReporterFactory, type ReporterName } from './registry.ts';
import { defaultHistoryPath, runDirLayout } from './run-dir.ts';
import { loadSummary } from './summary-schema.ts';
import { summarize, type RunSummary, type SummaryOutcome } from './summary.ts';
import type { Trends } from './trends.ts';

export interface BuildOptions {
  historyPath?: string;
  reporters?: readonly ReporterName[];
  /** Replace factories, e.g. to inject a failing reporter in a test. */
  factories?: Readonly<Record<string, ReporterFactory>>;
  onWarning?: (message: string) => void;
}

export interface BuildResult {
  summary: RunSummary;
  outcome: SummaryOutcome;
  /** Files written, absolute paths. */
  written: string[];
  failures: ReporterFailure[];
  historyPath: string;
  /** Why the history index was rebuilt, when it was. */
  historyRebuiltBecause: string | undefined;
  warnings: string[];
}

export async function buildReports(runDir: string, options: BuildOptions = {}): Promise<BuildResult> {
  const layout = runDirLayout(runDir);
  const summary = await loadSummary(layout.summary);
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    options.onWarning?.(m);
  };

  const historyPath = options.historyPath ?? defaultHistoryPath(layout.dir);
  let trends: Trends | undefined;
  let historyRebuiltBecause: string | undefined;
  try {
    const opened = await openHistory(historyPath, dirname(layout.dir));
    historyRebuiltBecause = opened.rebuiltBecause;
    opened.warnings.forEach(warn);
    try {
      trends = opened.history.trends(summary);
    } finally {
      opened.history.close();
    }
  } catch (e) {
    warn(`history index ${historyPath} unavailable, the report has no trends: ${(e as Error).message}`);
  }

  const names = options.reporters ?? SUMMARY_DERIVED_REPORTERS;
  const named = createReporters(names, { runDir: layout.dir, trends: () => trends, onWarning: warn }, options.factories ?? REPORTERS);
  const mux = new ReporterMultiplexer(named);
  await mux.onRunEnd(summary);

  const failed = new Set(mux.failures.map((f) => f.reporter));
  const fileOf: Partial<Record<ReporterName, string>> = { json: layout.summary, junit: layout.junit, html: layout.report };
  const written = names.filter((n) => !failed.has(n) && fileOf[n]).map((n) => fileOf[n]!);
  return {
    summary,
    outcome: summarize(summary.jobs, summary.startedAt),
    written,
    failures: mux.failures,
    historyPath,
    historyRebuiltBecause,
    warnings,
  };
}
