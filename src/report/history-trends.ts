// A TrendsSource backed by the history index beside a run directory: opens (rebuilding if
// needed) the index, reads the trends for the summary, and closes it. A history that
// cannot be opened at all (unwritable results root, say) costs the report its trends, not
// the report itself; the reason goes to `onWarning`.
import { dirname, resolve } from 'node:path';
import { openHistory } from './history.ts';
import { defaultHistoryPath } from './run-dir.ts';
import type { RunSummary } from './summary.ts';
import type { Trends } from './trends.ts';

export class HistoryTrends {
  private readonly runDir: string;
  private readonly historyPath: string;
  private readonly onWarning: (message: string) => void;

  constructor(runDir: string, onWarning: (message: string) => void = () => {}, historyPath?: string) {
    this.runDir = resolve(runDir);
    this.historyPath = historyPath ?? defaultHistoryPath(runDir);
    this.onWarning = onWarning;
  }

  readonly source = async (summary: RunSummary): Promise<Trends | undefined> => {
    let opened;
    try {
      opened = await openHistory(this.historyPath, dirname(this.runDir));
    } catch (e) {
      this.onWarning(`history index ${this.historyPath} unavailable, report has no trends: ${(e as Error).message}`);
      return undefined;
    }
    try {
      if (opened.rebuiltBecause) this.onWarning(`history index ${this.historyPath} rebuilt (${opened.rebuiltBecause})`);
      for (const w of opened.warnings) this.onWarning(w);
      return opened.history.trends(summary);
    } finally {
      opened.history.close();
    }
  };
}
