// Writes report.html at the end of a run. Trends come from the history index through a
// source the caller gives (history.ts), and the minimised scenarios shown inline are read
// from the run directory (the report file's folder), so this reporter stays a thin writer
// around the pure renderReport.
import { dirname } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';
import { presentEvidence, readInlineScenarios } from './evidence-files.ts';
import { renderReport } from './html-report.ts';
import type { Reporter } from './reporter.ts';
import type { RunSummary } from './summary.ts';
import type { Trends } from './trends.ts';

export type TrendsSource = (summary: RunSummary) => Promise<Trends | undefined> | Trends | undefined;

export class HtmlReporter implements Reporter {
  private readonly file: string;
  private readonly trends: TrendsSource | undefined;
  private readonly evidenceLinks: boolean;
  constructor(options: { file: string; trends?: TrendsSource; evidenceLinks?: boolean }) {
    this.file = options.file;
    this.trends = options.trends;
    this.evidenceLinks = options.evidenceLinks ?? true;
  }
  async onRunEnd(summary: RunSummary): Promise<void> {
    const trends = await this.trends?.(summary);
    const runDir = dirname(this.file);
    const inline = await readInlineScenarios(runDir, summary.jobs.filter((j) => j.verdict === 'diverge' || j.verdict === 'hang'));
    // A link is made only to evidence that is there, so every link of the page leads somewhere.
    const present = this.evidenceLinks ? await presentEvidence(runDir, summary.jobs) : new Set<string>();
    await writeFileAtomic(this.file, renderReport(summary, trends, {
      evidenceLinks: (p) => present.has(p),
      unlinkedNote: this.evidenceLinks ? 'not found in the run directory' : 'in the run directory',
      inline,
    }));
  }
}
