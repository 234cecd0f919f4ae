// The terminal reporter: one line per finished job, and on a TTY a status line (jobs done,
// running, failed, elapsed, estimate) rewritten in place under them. Without a TTY (CI
// logs, pipes) it writes plain lines only, never carriage returns or escape codes. The
// caller resolves colour, width and TTY-ness once (STYLE.md: no environment reads here).
import type { Reporter, RunPlan } from './reporter.ts';
import { isFailing, isQuarantineLive, type JobResult, type JobSpec, type RunSummary } from './summary.ts';
import { formatJobLine, formatProgress, formatRunEnd, type Screen } from './terminal-format.ts';

export interface ListReporterOptions {
  stream: { write(s: string): unknown };
  /** Rewrite a status line in place (a terminal); otherwise plain lines. */
  tty: boolean;
  color: boolean;
  width: number;
  /** The stream is stdout (so `--json` must not use this reporter there). */
  isStdout?: boolean;
  now?: () => number;
  /** Files to point at in the closing lines (report.html, junit.xml). */
  files?: readonly string[];
  /** The run directory, which the summary's trace paths are relative to. */
  runDir?: string | undefined;
}

export class ListReporter implements Reporter {
  private readonly o: ListReporterOptions;
  private readonly screen: Screen;
  private readonly now: () => number;
  private startedAt = 0;
  private total = 0;
  private done = 0;
  private running = 0;
  private failed = 0;
  private statusShown = false;

  constructor(options: ListReporterOptions) {
    this.o = options;
    this.screen = { color: options.tty && options.color, width: options.width };
    this.now = options.now ?? Date.now;
  }

  printsToStdout(): boolean {
    return this.o.isStdout ?? false;
  }

  onRunBegin(plan: RunPlan): void {
    this.startedAt = this.now();
    this.total = plan.jobs.length;
    if (!this.o.tty) this.o.stream.write(`run ${plan.runId} (${plan.lab}): ${this.total} job(s)\n`);
    this.drawStatus();
  }

  onJobBegin(_job: JobSpec): void {
    this.running++;
    this.drawStatus();
  }

  onJobEnd(job: JobSpec, result: JobResult): void {
    this.running = Math.max(0, this.running - 1);
    this.done++;
    if (isFailing(result.verdict) && !isQuarantineLive(result)) this.failed++;
    this.clearStatus();
    this.o.stream.write(`${formatJobLine(job, result, this.screen, { index: this.done, total: this.total })}\n`);
    this.drawStatus();
  }

  onRunEnd(summary: RunSummary): void {
    this.clearStatus();
    for (const line of formatRunEnd(summary, this.screen, this.o.files, this.o.runDir)) this.o.stream.write(`${line}\n`);
  }

  private drawStatus(): void {
    if (!this.o.tty) return;
    const text = formatProgress(
      { total: this.total, done: this.done, running: this.running, failed: this.failed, elapsedMs: this.now() - this.startedAt },
      this.screen,
    );
    this.o.stream.write(`\r\u001b[2K${text}`);
    this.statusShown = true;
  }

  private clearStatus(): void {
    if (!this.statusShown) return;
    this.o.stream.write('\r\u001b[2K');
    this.statusShown = false;
  }
}
