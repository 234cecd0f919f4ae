// Shrinking a scenario that shows a divergence on the emulator (with a fault mode), so
// the person reading the report gets the smallest scenario that still shows it.
//
// Greedy and deterministic: repeatedly try to drop a step, halve a count or a size,
// shorten a hold or a run, and drop channels no step uses; keep any change after which
// the run still diverges with the same class. Stops when no change helps, after a
// bounded number of tries, or at a deadline (`bench check --minimise-time`), and tells
// its progress as it goes.

import { executeScenario } from '../scenario/execute.ts';
import type { Scenario, Step } from '../scenario/model.ts';
import { checkRules } from '../scenario/validate.ts';
import { StampingSink } from '../trace/sink.ts';
import type { FaultMode } from '../vmbus/faults.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import { PropertyChecker, statusRuleOf, type DivergenceClass } from './properties.ts';

export interface Reproduction {
  fault: FaultMode;
  seed: number;
  class: DivergenceClass;
  choices?: Partial<GapChoices> | undefined;
}

/** Whether the scenario, run with the fault, diverges with `cls`. */
export function reproduces(s: Scenario, r: Reproduction): boolean {
  if (checkRules(s).length > 0) return false;
  const checker = new PropertyChecker({ maxViolations: 20, statusRule: statusRuleOf(s) });
  const res = executeScenario(s, { seed: r.seed, sink: new StampingSink('emulator', (e) => checker.onEvent(e)), faults: [r.fault], choices: r.choices, maxSteps: 200_000 });
  if (!res.faultsFired.includes(r.fault)) return false;
  return checker.finish(res.hang, res.refusedRestores).some((v) => v.class === r.class);
}

/** Tries each fault mode and a few seeds; the first that reproduces the class (none once past `deadline`, a performance.now() time). */
export function findReproduction(s: Scenario, cls: DivergenceClass, faults: readonly FaultMode[], choices?: Partial<GapChoices>, deadline = Infinity): Reproduction | null {
  for (const fault of faults) {
    for (const seed of [1, 2, 3, 4, 5]) {
      if (performance.now() > deadline) return null;
      const r = { fault, seed, class: cls, choices };
      if (reproduces(s, r)) return r;
    }
  }
  return null;
}

export interface MinimiseProgress {
  tries: number;
  /** steps of the smallest scenario so far */
  steps: number;
  elapsedMs: number;
}

export interface MinimiseOptions {
  maxTries?: number | undefined;
  /** Stop trying at this performance.now() time, keeping the smallest scenario so far. */
  deadline?: number | undefined;
  /** Told about once a second: a large scenario takes minutes to shrink. */
  onProgress?: ((p: MinimiseProgress) => void) | undefined;
}

function* candidates(s: Scenario): Generator<Scenario> {
  const withSteps = (steps: Step[]): Scenario => ({ ...s, steps });
  // Drop one step (later steps first: they are more often incidental).
  for (let i = s.steps.length - 1; i >= 0; i--) {
    if (s.steps.length > 1) yield withSteps(s.steps.filter((_, j) => j !== i));
  }
  // Make one step smaller.
  for (let i = 0; i < s.steps.length; i++) {
    const st = s.steps[i]!;
    const replace = (n: Step): Scenario => withSteps(s.steps.map((x, j) => (j === i ? n : x)));
    if ('count' in st && st.count > 1) yield replace({ ...st, count: Math.max(1, Math.floor(st.count / 2)) } as Step);
    if ('size' in st && st.size > 24) yield replace({ ...st, size: Math.max(24, Math.floor(st.size / 2)) } as Step);
    if ('hold' in st && st.hold > 0) yield replace({ ...st, hold: Math.floor(st.hold / 2) } as Step);
    if (st.op === 'run' && st.ms > 0) yield replace({ ...st, ms: Math.floor(st.ms / 2) });
  }
  // Drop channels that no step names.
  const used = new Set(s.steps.flatMap((st) => ('channel' in st ? [st.channel] : [])));
  if (s.channels.length > 1) {
    const kept = s.channels.filter((c) => used.has(c.id));
    if (kept.length > 0 && kept.length < s.channels.length) yield { ...s, channels: kept };
  }
}

export function minimise(s: Scenario, r: Reproduction, opts: MinimiseOptions | number = {}): { scenario: Scenario; tries: number; timedOut: boolean } {
  const o = typeof opts === 'number' ? { maxTries: opts } : opts;
  const maxTries = o.maxTries ?? 400;
  const deadline = o.deadline ?? Infinity;
  const started = performance.now();
  let told = started;
  let current = s;
  let tries = 0;
  let improved = true;
  let timedOut = false;
  // Invariant: `current` reproduces the divergence at every moment, so stopping early
  // (tries or time) still gives a scenario that shows it, only a larger one.
  while (improved && tries < maxTries && !timedOut) {
    improved = false;
    for (const c of candidates(current)) {
      if (++tries > maxTries) break;
      const now = performance.now();
      if (now > deadline) {
        timedOut = true;
        break;
      }
      if (o.onProgress && now - told >= 1000) {
        told = now;
        o.onProgress({ tries, steps: current.steps.length, elapsedMs: Math.round(now - started) });
      }
      if (reproduces(c, r)) {
        current = c;
        improved = true;
        break;
      }
    }
  }
  return { scenario: { ...current, name: `${s.name}-minimal` }, tries, timedOut };
}

/** The scenario as YAML a person can read and `bench emulate` can run. */
export function scenarioToYaml(s: Scenario, r: Reproduction): Record<string, unknown> {
  return {
    name: s.name,
    description: `Smallest scenario found that still shows "${r.class}" on the emulator with fault ${r.fault} and seed ${r.seed}.`,
    seed: r.seed,
    channels: s.channels,
    saveBufferSize: s.saveBufferSize,
    host: s.host,
    ...(Object.keys(s.choices).length > 0 ? { choices: s.choices } : {}),
    steps: s.steps,
  };
}
