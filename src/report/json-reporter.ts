// summary.json: the run's results as one JSON document (the shape is in summary.ts). It is
// written once, in onRunEnd, to a temp file and renamed, so `bench report` and the history
// index never read half of one. Without a file it goes to stdout (for `--json`).
import { writeFileAtomic } from './atomic-file.ts';
import type { Reporter } from './reporter.ts';
import type { RunSummary } from './summary.ts';
import { stringifyWithIds } from '../trace/json-ids.ts';

export function serializeSummary(summary: RunSummary): string {
  return `${stringifyWithIds(summary, 2)}\n`;
}

export class JsonReporter implements Reporter {
  private readonly file: string | undefined;
  private readonly stdout: { write(s: string): unknown };
  constructor(options: { file?: string; stdout?: { write(s: string): unknown } } = {}) {
    this.file = options.file;
    this.stdout = options.stdout ?? process.stdout;
  }
  printsToStdout(): boolean {
    return this.file === undefined;
  }
  async onRunEnd(summary: RunSummary): Promise<void> {
    if (this.file === undefined) this.stdout.write(serializeSummary(summary));
    else await writeFileAtomic(this.file, serializeSummary(summary));
  }
}
