// Every built-in reporter, by name (STYLE.md 11). The caller resolves its configuration
// (run directory, terminal, trends) once and passes it in; reporters never read the
// environment.
import { HistoryTrends } from './history-trends.ts';
import { HtmlReporter, type TrendsSource } from './html-reporter.ts';
import { JsonReporter } from './json-reporter.ts';
import { JunitReporter } from './junit-reporter.ts';
import { ListReporter, type ListReporterOptions } from './list-reporter.ts';
import type { NamedReporter, Reporter } from './reporter.ts';
import { runDirLayout } from './run-dir.ts';

export interface ReporterContext {
  runDir: string;
  /** Trends for report.html; by default read from the history index beside the run directory. */
  trends?: TrendsSource;
  /** Where the terminal reporter writes; without it, plain lines on stderr. */
  terminal?: ListReporterOptions;
  /** Warnings that are not failures (a run directory the history could not index). */
  onWarning?: (message: string) => void;
}

export type ReporterFactory = (ctx: ReporterContext) => Reporter;

export const REPORTERS = {
  json: (ctx) => new JsonReporter({ file: runDirLayout(ctx.runDir).summary }),
  junit: (ctx) => new JunitReporter({ file: runDirLayout(ctx.runDir).junit }),
  html: (ctx) =>
    new HtmlReporter({
      file: runDirLayout(ctx.runDir).report,
      trends: ctx.trends ?? new HistoryTrends(ctx.runDir, ctx.onWarning).source,
    }),
  list: (ctx) => new ListReporter(ctx.terminal ?? { stream: process.stderr, tty: false, color: false, width: 120 }),
} satisfies Record<string, ReporterFactory>;

export type ReporterName = keyof typeof REPORTERS;

/** What a run writes: progress on the terminal, then summary.json, junit.xml, report.html. */
export const RUN_REPORTERS: readonly ReporterName[] = ['list', 'json', 'junit', 'html'];
/** What `bench report` rebuilds from summary.json. */
export const SUMMARY_DERIVED_REPORTERS: readonly ReporterName[] = ['junit', 'html'];

export function isReporterName(name: string): name is ReporterName {
  return Object.hasOwn(REPORTERS, name);
}

export function createReporters(
  names: readonly ReporterName[],
  ctx: ReporterContext,
  factories: Readonly<Record<string, ReporterFactory>> = REPORTERS,
): NamedReporter[] {
  return names.map((name) => {
    const factory = factories[name];
    if (!factory) throw new Error(`no reporter named ${name}`);
    return { name, reporter: factory(ctx) };
  });
}
