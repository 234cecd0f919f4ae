// The messages between the main thread and emulator worker threads, in one file
// (STYLE.md 10). Worker threads run the emulator only: nightly jobs and shares of an explore.
// Nothing here holds a class instance: scenarios, choices, results and errors all cross
// as plain, structured-cloneable data, and errors are rebuilt on arrival
// (errors.ts, fromPlainError), because `instanceof` does not survive the boundary.
import type { ExploreBase, PointRange, RangeResult } from '../../check/explore.ts';
import type { PlainError } from '../../errors.ts';
import type { InjectedOp } from '../../scenario/execute.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { TraceEvent } from '../../trace/schema.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import type { FaultMode } from '../../vmbus/faults.ts';

/** One emulated nightly job: a scenario, a seed and a host build's gap choices. */
export interface EmulatedJobTask {
  kind: 'emulated-job';
  jobId: string;
  scenario: Scenario;
  seed: number;
  choices: Partial<GapChoices>;
  /** platform bugs the emulator imitates in this job (`--fault`), none by default */
  faults?: readonly FaultMode[] | undefined;
  /** Absolute path of the trace to write; written as `<file>.partial`, renamed when whole. */
  traceFile: string;
}

/**
 * A worker's share of `bench explore` (run/commands/explore-parallel.ts): it takes `ranges` of save
 * points one at a time from the counter in `shared`, which the other threads take from too.
 */
export interface ExploreShareTask {
  kind: 'explore-share';
  scenario: Scenario;
  seed: number;
  ops: readonly InjectedOp[];
  choices?: Partial<GapChoices> | undefined;
  faults?: readonly FaultMode[] | undefined;
  ranges: readonly PointRange[];
  /** two Int32 counters: the next range to hand out, and schedules decided so far */
  shared: SharedArrayBuffer;
  maxSchedules?: number | undefined;
  /** the base run's save points and verdict, found once by the caller */
  base: ExploreBase;
  plain?: boolean | undefined;
}

export type WorkerTask = EmulatedJobTask | ExploreShareTask;

/** What an emulated job found. A divergence is a result, not an error. */
export interface EmulatedJobOutcome {
  verdict: 'pass' | 'diverge' | 'hang';
  divergenceClass?: string | undefined;
  message?: string | undefined;
  failedProperties?: string[] | undefined;
  /** The first violation's event, with its line in the trace (line = seq). */
  firstViolation?: { line: number; event: TraceEvent } | undefined;
  /** Trace events around the first violation, in order. */
  timeline?: TraceEvent[] | undefined;
  events: number;
  steps: number;
  emulatorMs: number;
}

export interface TaskResults {
  'emulated-job': EmulatedJobOutcome;
  /** [range index, what was found there] for each range this worker took */
  'explore-share': [number, RangeResult][];
}

export type ResultOf<T extends WorkerTask> = TaskResults[T['kind']];

/** Main thread -> worker. */
export interface TaskMessage {
  type: 'task';
  id: number;
  task: WorkerTask;
}

/** Worker -> main thread: exactly one `result` or `error` per task. */
export type WorkerReply =
  | { type: 'result'; id: number; result: TaskResults[keyof TaskResults] }
  | { type: 'error'; id: number; error: PlainError };

export function isWorkerReply(m: unknown): m is WorkerReply {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as { type?: unknown; id?: unknown };
  return (r.type === 'result' || r.type === 'error') && typeof r.id === 'number';
}
