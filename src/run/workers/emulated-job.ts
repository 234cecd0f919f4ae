// One emulated nightly job, as a worker thread runs it: the scenario on the emulator
// with a host build's gap choices, its trace written to a file, and the properties of
// DESIGN.md checked online as the events go by.
//
// The trace is written to `<file>.partial` and renamed when closed, so a job killed
// halfway (a crashed worker, a killed run that is later resumed) never leaves a trace
// that looks whole. The timeline around the first violation comes from a small ring
// buffer of recent events plus the few that follow, so no trace is kept in memory.
import { PropertyChecker, statusRuleOf, type Violation } from '../../check/properties.ts';
import { executeScenario, type ExecuteResult } from '../../scenario/execute.ts';
import type { TraceEvent } from '../../trace/schema.ts';
import { StampingSink } from '../../trace/sink.ts';
import { withTraceFile } from '../../trace/writer.ts';
import type { EmulatedJobOutcome, EmulatedJobTask } from './worker-protocol.ts';

/** Events kept before the first violation's event, and taken after it. */
const BEFORE = 6;
const AFTER = 4;

export interface JobHooks {
  /** Rewrites each event before it is written and checked (tests break traces with it). */
  mutate?: ((e: TraceEvent) => TraceEvent) | undefined;
}

export function runEmulatedJob(task: EmulatedJobTask, hooks: JobHooks = {}): EmulatedJobOutcome {
  const checker = new PropertyChecker({ statusRule: statusRuleOf(task.scenario) });
  const window = new TimelineWindow(BEFORE, AFTER);
  const mutate = hooks.mutate;
  const started = performance.now();
  let lastSeq = 0;
  const result: ExecuteResult = withTraceFile(task.traceFile, (write) => {
    const sink = new StampingSink('emulator', (original) => {
      const e = mutate ? mutate(original) : original;
      write(e);
      const before = checker.violations.length;
      checker.onEvent(e);
      window.push(e, before === 0 && checker.violations.length > 0 ? checker.violations[0]!.seq : null);
    });
    const r = executeScenario(task.scenario, { seed: task.seed, sink, choices: task.choices, faults: task.faults });
    lastSeq = sink.lastSeq;
    return r;
  });
  const emulatorMs = round(performance.now() - started);
  const violations = checker.finish(result.hang, result.refusedRestores);
  const base = { events: lastSeq, steps: result.steps, emulatorMs };
  const first = violations[0];
  if (!first) return { verdict: 'pass', ...base };
  return {
    verdict: first.class === 'hang' ? 'hang' : 'diverge',
    divergenceClass: first.class,
    message: first.message + (violations.length > 1 ? ` (and ${violations.length - 1} more violation(s))` : ''),
    failedProperties: uniqueProperties(violations),
    firstViolation: window.marked ? { line: window.marked.seq, event: window.marked } : undefined,
    timeline: window.events(),
    ...base,
  };
}

function uniqueProperties(vs: readonly Violation[]): string[] {
  return [...new Set(vs.map((v) => v.property))];
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * The last `before` events until one is marked (the first violation's event), then that
 * one and up to `after` more. A violation found only at the end (a lost packet, a hang)
 * marks nothing, and the window is simply the run's last events.
 */
export class TimelineWindow {
  private readonly ring: (TraceEvent | undefined)[];
  private next = 0;
  private count = 0;
  private readonly kept: TraceEvent[] = [];
  private readonly after: number;
  marked: TraceEvent | undefined;

  constructor(before: number, after: number) {
    this.ring = new Array<TraceEvent | undefined>(before + after + 1);
    this.after = after;
  }

  /** `violationSeq` is the seq of the first violation when this event revealed it. */
  push(e: TraceEvent, violationSeq: number | null): void {
    if (this.marked) {
      if (this.kept.length < this.after) this.kept.push(e);
      return;
    }
    this.ring[this.next] = e;
    this.next = (this.next + 1) % this.ring.length;
    this.count = Math.min(this.count + 1, this.ring.length);
    // The checker names the event that showed the violation; it is normally this one,
    // but look it up in the window in case it was an earlier one.
    if (violationSeq !== null) this.marked = this.ordered().find((x) => x.seq === violationSeq) ?? e;
  }

  events(): TraceEvent[] {
    const ring = this.ordered();
    if (!this.marked) return ring.slice(-(this.ring.length - 1));
    const at = ring.indexOf(this.marked);
    return [...ring.slice(Math.max(0, at - (this.ring.length - this.after - 1))), ...this.kept];
  }

  private ordered(): TraceEvent[] {
    const out: TraceEvent[] = [];
    const start = this.count < this.ring.length ? 0 : this.next;
    for (let i = 0; i < this.count; i++) out.push(this.ring[(start + i) % this.ring.length]!);
    return out;
  }
}
