// `bench explore`: the scenario once for every save point and every VM operation there.
//
// A save point is a position between two scheduler steps of the base run: the moment a
// save could start. At each, the run is repeated with a VM operation injected (save +
// restore, a migration to another host, a checkpoint the VM runs on from, a checkpoint
// applied at once), and the
// properties are checked online on the whole run. What is in flight at the point (in
// the library queue, in a ring, awaiting completion, held by a driver) is whatever the
// seeded schedule put there, so with the base seed fixed every (point, operation) pair
// is one deterministic schedule.
//
// Running each schedule from the start makes exploring quadratic in the scenario's
// length. Most operations, though, hand the run back exactly as they found it: the
// restored host objects, guest and guest memory are what was saved, and nothing was
// pending that the save had to finish early. Such a schedule is the base run with the
// operation's own events in the middle, so its verdict is the base run's, provided the
// operation's events broke no property either. Explore therefore walks the base run
// once and, at every save point, runs each operation in place and compares the run's
// state (scenario/state-key.ts) and the property checker's (PropertyChecker.mark)
// before and after:
//   equal     the schedule passes, and the walk goes on from the restored state;
//   not equal the run goes on without further operations: it is that schedule's own
//             run, as in the plain method; the walk then starts again from the
//             beginning, passing this point without the operation.
// When the base run itself breaks a property, every schedule is run on its own.

import { cDriversKeyed, executeScenario, type InjectedOp, type SavePoint } from '../scenario/execute.ts';
import type { StateKey } from '../scenario/state-key.ts';
import type { Scenario } from '../scenario/model.ts';
import { usesCDrivers } from '../scenario/devices-mode.ts';
import { StampingSink, type TraceSink } from '../trace/sink.ts';
import type { EventBody, TraceEvent } from '../trace/schema.ts';
import { PropertyChecker, statusRuleOf, sameVerdicts, type Violation } from './properties.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { FaultMode } from '../vmbus/faults.ts';

export const EXPLORE_OPS: readonly InjectedOp[] = ['save-restore', 'migrate', 'checkpoint', 'checkpoint-apply'];

export interface ExploreFailure {
  at: number;
  op: InjectedOp;
  violations: Violation[];
}

export interface ExploreResult {
  scenario: string;
  seed: number;
  savePoints: number;
  schedules: number;
  /** points where the VM was not running (saved or paused), so nothing was injected */
  skipped: number;
  failures: ExploreFailure[];
  truncated: boolean;
  /** schedules that could not be decided in the walk and were run from the start */
  ranInFull: number;
  durationMs: number;
}

export interface ExploreOptions {
  seed: number;
  maxSchedules?: number | undefined;
  ops?: readonly InjectedOp[] | undefined;
  choices?: Partial<GapChoices> | undefined;
  /** only save points in [from, to) (to split the work across threads) */
  range?: { from: number; to: number } | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** run every schedule from the start (the plain method; tests compare the two) */
  plain?: boolean | undefined;
  /** platform bugs to imitate in every run (vmbus/faults.ts), to see where each bites */
  faults?: readonly FaultMode[] | undefined;
}

const MAX_VIOLATIONS = 5;

/** What explore needs to know of the base run: its save points, and whether it broke a property. */
export interface ExploreBase {
  points: number;
  clean: boolean;
}

export function exploreBase(s: Scenario, opts: Pick<ExploreOptions, 'seed' | 'choices' | 'faults'>): ExploreBase {
  const checker = new PropertyChecker({ maxViolations: MAX_VIOLATIONS, statusRule: statusRuleOf(s) });
  const base = executeScenario(s, { seed: opts.seed, sink: checkedSink(checker), choices: opts.choices, faults: opts.faults });
  return { points: base.steps + 1, clean: checker.finish(base.hang, base.refusedRestores).length === 0 };
}

/** A range of save points, [from, to). */
export interface PointRange {
  from: number;
  to: number;
}

/** What explore found in one range of save points. */
export type RangeResult = Pick<ExploreResult, 'schedules' | 'skipped' | 'failures' | 'truncated' | 'ranInFull'>;

/**
 * Hands out the ranges a thread explores, one at a time and in increasing order (each
 * starts at or after the end of the one before); null when there are none left.
 */
export type RangeClaim = () => { index: number; range: PointRange } | null;

/** `base`: exploreBase's answer when the caller has it already. */
export function explore(s: Scenario, opts: ExploreOptions, base: ExploreBase = exploreBase(s, opts)): ExploreResult {
  const started = performance.now();
  const points = base.points;
  // (exploreRanges keeps the range inside [0, points).)
  const range = opts.range ?? { from: 0, to: points };
  let claimed = false;
  let done = 0;
  const total = points * (opts.ops ?? EXPLORE_OPS).length;
  const found = exploreRanges(s, opts, base, () => (claimed ? null : ((claimed = true), { index: 0, range })), () => {
    if (++done % PROGRESS_EVERY === 0) opts.onProgress?.(done, total);
  });
  // The one range was handed out, so it has its result.
  const r = found.get(0)!;
  return { scenario: s.name, seed: opts.seed, savePoints: points, ...r, durationMs: Math.round(performance.now() - started) };
}

/** How many schedules pass between two progress reports. */
export const PROGRESS_EVERY = 500;

/**
 * Explores every range `claim` hands out, in one thread, and returns each range's result
 * by the index it was handed out with. Each range counts on its own (and stops on its own
 * at `maxSchedules`), so ranges explored by several threads can be put back together in
 * order (run/commands/explore-parallel.ts). `passed` is called once per schedule decided.
 *
 * The ranges come in increasing order, so one walk of the base run serves them all: the
 * walk passes the save points of ranges it was not given without operating there.
 */
export function exploreRanges(s: Scenario, opts: ExploreOptions, base: ExploreBase, claim: RangeClaim, passed: () => void): Map<number, RangeResult> {
  const ops = opts.ops ?? EXPLORE_OPS;
  const tallies = new Map<number, Tally>();
  const next = (): Tally | null => {
    const c = claim();
    if (!c) return null;
    const from = Math.max(0, c.range.from);
    const tally = new Tally(opts.maxSchedules ?? Infinity, from, Math.max(from, Math.min(base.points, c.range.to)), passed);
    tallies.set(c.index, tally);
    return tally;
  };
  // The walk compares run states by key (scenario/state-key.ts). With devices: c the C
  // VSP is keyed by its device (EmulatorDevice.keyDriver), and with c-linux or c-windows
  // the C guest too, as its image (the guest's GuestDriver.keyers); a device that cannot
  // has every schedule run from the start. Slower, the same verdicts.
  const keyed = !usesCDrivers(s.devices) || cDriversKeyed(s);
  if (base.clean && !opts.plain && keyed) walk(s, opts, ops, next);
  else {
    for (let t = next(); t; t = next()) {
      for (let at = t.from; at < t.to && !t.truncated; at++) for (const op of ops) t.ranOnItsOwn(s, opts, at, op);
    }
  }
  const results = new Map<number, RangeResult>();
  for (const [i, t] of tallies) results.set(i, t.result());
  return results;
}

/** Counts one range's schedules in (save point, operation) order and stops at the limit. */
class Tally {
  schedules = 0;
  skipped = 0;
  ranInFull = 0;
  truncated = false;
  readonly failures: ExploreFailure[] = [];
  private readonly max: number;
  readonly from: number;
  readonly to: number;
  private readonly onPassed: () => void;

  constructor(max: number, from: number, to: number, onPassed: () => void) {
    this.max = max;
    this.from = from;
    this.to = to;
    this.onPassed = onPassed;
  }

  result(): RangeResult {
    return { schedules: this.schedules, skipped: this.skipped, failures: this.failures, truncated: this.truncated, ranInFull: this.ranInFull };
  }

  /** False (and truncated) once the limit is reached: no further pair is looked at. */
  mayGoOn(): boolean {
    if (this.schedules >= this.max) this.truncated = true;
    return !this.truncated;
  }

  passed(): void {
    this.schedules++;
    this.onPassed();
  }

  /** Points where the VM was not running: each of their operations is skipped. */
  skip(pairs: number): void {
    for (let i = 0; i < pairs && this.mayGoOn(); i++) this.skipped++;
  }

  /** The plain method: one run from the start with the operation injected at `at`. */
  ranOnItsOwn(s: Scenario, opts: ExploreOptions, at: number, op: InjectedOp): void {
    if (!this.mayGoOn()) return;
    const checker = new PropertyChecker({ maxViolations: MAX_VIOLATIONS, statusRule: statusRuleOf(s) });
    const r = executeScenario(s, { seed: opts.seed, sink: checkedSink(checker), choices: opts.choices, faults: opts.faults, inject: { at, op } });
    if (!r.injected) {
      this.skipped++;
      return;
    }
    this.ranAsSchedule(at, op, checker.finish(r.hang, r.refusedRestores));
  }

  /** A schedule that ran from the start (on its own, or as a walk that turned into it). */
  ranAsSchedule(at: number, op: InjectedOp, violations: Violation[]): void {
    this.ranInFull++;
    if (violations.length > 0) this.failures.push({ at, op, violations });
    this.passed();
  }
}

/**
 * The walk (see the top of the file), over the ranges `nextRange` hands out. `next` is
 * the first (point, operation) pair of the current range not yet decided. Each pass of
 * the loop is one run of the scenario that decides pairs in order until an operation
 * changes the state; the run then goes on without further operations and so is that
 * schedule's own run, whose verdict it gives. The next pass starts again from the
 * beginning, passing that point without the operation. Points of no range of this walk's
 * are passed without operating.
 */
function walk(s: Scenario, opts: ExploreOptions, ops: readonly InjectedOp[], nextRange: () => Tally | null): void {
  let range = nextRange();
  if (!range) return;
  let next = { at: range.from, op: 0 };
  for (;;) {
    const checker = new PropertyChecker({ maxViolations: MAX_VIOLATIONS, statusRule: statusRuleOf(s) });
    const sink = new WalkSink(checker);
    let became: { at: number; op: number } | null = null; // the schedule this run turned into
    let shown = next.at - 1; // the last point of the current range the run was seen at
    const spare: { before?: StateKey; after?: StateKey } = {};
    const atSavePoint = (at: number, point: SavePoint): 'go-on' | 'stop' => {
      if (became !== null || at < next.at) return 'go-on';
      // Past the current range (or done with it at the limit): on to the next one.
      while (at >= range!.to || range!.truncated) {
        // Points of the range the run was not seen at had the VM not running.
        range!.skip((range!.to - shown - 1) * ops.length);
        range = nextRange();
        if (!range) return 'stop';
        next = { at: range.from, op: 0 };
        shown = range.from - 1;
        if (at < next.at) return 'go-on';
      }
      const tally = range!;
      tally.skip((at - shown - 1) * ops.length);
      shown = at;
      // Keys are built in the buffers of the last point's (no longer needed).
      const before = (spare.before = point.key({ into: spare.before }));
      const checked = checker.mark();
      for (let i = at === next.at ? next.op : 0; i < ops.length; i++) {
        if (!tally.mayGoOn()) return 'go-on';
        const seq = sink.seq;
        sink.others = 0;
        point.run(ops[i]!);
        // The checker's mark speaks only for the events of a save and restore (see mark).
        spare.after = point.key({ transient: true, into: spare.after });
        if (sink.others > 0 || !sameVerdicts(checked, checker.mark()) || !spare.after.equals(before)) {
          became = { at, op: i };
          return 'go-on';
        }
        // Decided: the base run goes on, numbering its events as it does without this operation.
        sink.seq = seq;
        tally.passed();
      }
      next = { at: at + 1, op: 0 };
      return 'go-on';
    };
    const r = executeScenario(s, { seed: opts.seed, sink, choices: opts.choices, faults: opts.faults, atSavePoint });
    if (became === null) {
      // The run ended, or ran out of ranges. Ended: it was shown every point where the VM
      // was running, so the rest of this range and every range still to come are skipped.
      if (!r.stopped) {
        for (; range; range = nextRange()) range.skip((range.to - Math.max(shown, range.from - 1) - 1) * ops.length);
      }
      return;
    }
    const b: { at: number; op: number } = became;
    range!.ranAsSchedule(b.at, ops[b.op]!, checker.finish(r.hang, r.refusedRestores));
    next = b.op + 1 < ops.length ? { at: b.at, op: b.op + 1 } : { at: b.at + 1, op: 0 };
  }
}

/**
 * Stamps events as StampingSink does, for one checker, with a `seq` the walk sets back
 * after a decided operation, so that every later event (and violation) carries the seq
 * it has in that schedule's own run.
 */
class WalkSink implements TraceSink {
  seq = 0;
  /** events other than a save and restore's own since this was last set to 0 */
  others = 0;
  private readonly checker: PropertyChecker;

  constructor(checker: PropertyChecker) {
    this.checker = checker;
  }

  emit(body: EventBody): void {
    this.seq += 1;
    // Stamped in place rather than copied: each emit hands over an object of its own, and
    // the checker keeps nothing of it (copying every event was a twentieth of the walk).
    const e = body as TraceEvent;
    e.v = 1;
    e.seq = this.seq;
    e.src = 'emulator';
    if (!SAVE_RESTORE_EVENTS.has(e.ev) && !e.ev.startsWith('vm.')) this.others++;
    this.checker.onEvent(e);
  }
}

/** What a save and restore write besides vm.* events (PropertyChecker.mark relies on it). */
const SAVE_RESTORE_EVENTS: ReadonlySet<string> = new Set(['pkt.save', 'pkt.restore', 'ch.state']);

function checkedSink(checker: PropertyChecker): StampingSink {
  return new StampingSink('emulator', (e) => checker.onEvent(e));
}
