// The one reporter interface (STYLE.md 11) and the multiplexer that drives several
// reporters as one.
//
// Every hook is optional. Reporters build their output at the end (onRunEnd) and write
// files to a temp path, then rename. The multiplexer calls every reporter for every hook,
// and a reporter that throws (or rejects) does not stop the others: a crashing HTML
// reporter still leaves junit.xml. Each failure is passed to `onError` and kept, so the
// caller can report it and choose the exit code.
import type { JobResult, JobSpec, RunSummary } from './summary.ts';

/** What a reporter learns before the run starts. The run layer's plan has at least this. */
export interface RunPlan {
  runId: string;
  lab: string;
  jobs: readonly JobSpec[];
}

export interface Reporter {
  onRunBegin?(plan: RunPlan): void;
  onJobBegin?(job: JobSpec): void;
  onJobEnd?(job: JobSpec, result: JobResult): void;
  onRunEnd?(summary: RunSummary): Promise<void> | void;
  /** True when the reporter writes to stdout, so the caller knows stdout is taken. */
  printsToStdout?(): boolean;
}

export interface ReporterFailure {
  reporter: string;
  hook: keyof Reporter;
  error: unknown;
}

export interface NamedReporter {
  name: string;
  reporter: Reporter;
}

export class ReporterMultiplexer implements Reporter {
  readonly failures: ReporterFailure[] = [];
  private readonly reporters: readonly NamedReporter[];
  private readonly onError: (f: ReporterFailure) => void;

  constructor(reporters: readonly NamedReporter[], onError: (f: ReporterFailure) => void = () => {}) {
    this.reporters = reporters;
    this.onError = onError;
  }

  onRunBegin(plan: RunPlan): void {
    for (const r of this.reporters) this.guard(r, 'onRunBegin', () => r.reporter.onRunBegin?.(plan));
  }

  onJobBegin(job: JobSpec): void {
    for (const r of this.reporters) this.guard(r, 'onJobBegin', () => r.reporter.onJobBegin?.(job));
  }

  onJobEnd(job: JobSpec, result: JobResult): void {
    for (const r of this.reporters) this.guard(r, 'onJobEnd', () => r.reporter.onJobEnd?.(job, result));
  }

  /** Runs every reporter's onRunEnd concurrently and waits for all, failed or not. */
  async onRunEnd(summary: RunSummary): Promise<void> {
    await Promise.all(
      this.reporters.map(async (r) => {
        try {
          await r.reporter.onRunEnd?.(summary);
        } catch (error) {
          this.fail({ reporter: r.name, hook: 'onRunEnd', error });
        }
      }),
    );
  }

  printsToStdout(): boolean {
    return this.reporters.some((r) => {
      try {
        return r.reporter.printsToStdout?.() ?? false;
      } catch {
        return false;
      }
    });
  }

  private guard(r: NamedReporter, hook: keyof Reporter, call: () => unknown): void {
    try {
      const out = call();
      // A synchronous hook that returns a promise anyway must not reject unobserved.
      if (out instanceof Promise) out.catch((error: unknown) => this.fail({ reporter: r.name, hook, error }));
    } catch (error) {
      this.fail({ reporter: r.name, hook, error });
    }
  }

  private fail(f: ReporterFailure): void {
    this.failures.push(f);
    try {
      this.onError(f);
    } catch {
      // The error sink itself failed; the failure is still kept in `failures`.
    }
  }
}

export function describeFailure(f: ReporterFailure): string {
  const msg = f.error instanceof Error ? f.error.message : String(f.error);
  return `${f.reporter} reporter failed in ${f.hook}: ${msg}`;
}
