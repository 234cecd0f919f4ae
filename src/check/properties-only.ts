// `bench check --properties-only`: a trace checked against the device-independent
// properties alone, without replaying the sample device's model.
//
// Trace validation (replay.ts) needs a model of the device: it replays the scenario on the
// TypeScript twins of the sample protocol, so a driver with another message pattern,
// other payloads or another status rule diverges at its first packet (class `payload`).
// What holds for every device is what VMBus and KMCL promise whatever the bytes are:
// exactly one completion per transaction that asked for one and none without a send,
// each packet received exactly once, a transaction in flight at a save saved and restored
// with the same SaveBuf digest, channel states in KMCL's order, a checkpoint rolling
// everything back, and a run that finishes. The property checker (properties.ts) checks
// all of those online; here it runs alone, with no status rule (an opaque device), over
// the observed events in file order. A device that is declared opaque will be checked
// the same way.
//
// What this cannot see, and says so in every output (NOT_CHECKED): whether each payload
// and status is the one the device's protocol gives, and whether the events come in an
// order, and in a number, the scenario's model allows.

import { InputError } from '../errors.ts';
import type { ObservedEvent, ObservedSource } from './observed.ts';
import { PropertyChecker, type PropertyName } from './properties.ts';
import type { CheckResult } from './replay.ts';

/** What a properties-only check does not check, one sentence each (terminal, JSON and report). */
export const NOT_CHECKED: readonly string[] = [
  "payload rules: whether each packet's and each completion's payload is the one the device's protocol gives (the sample device model was not replayed)",
  "status rules: whether each completion's status is the one the device's protocol gives",
  "the scenario's traffic: whether the trace holds the packets, holds and order the scenario's model allows",
];

/** What it does check: the device-independent properties, by the checker's names. */
export const CHECKED: readonly PropertyName[] = [
  'exactly-once-completion',
  'exactly-once-delivery',
  'payload', // equal end to end only: sent = received, completed = completion
  'saved-and-restored',
  'state-machine',
  'checkpoint',
  'progress',
];

export interface PropertiesOnlyResult {
  result: CheckResult;
  /** the name in the trace's scenario.begin, or null when it has none */
  scenario: string | null;
}

/**
 * Reads `source` to its end and checks the device-independent properties.
 * `scenario`: when given, the trace must be of that scenario (InputError otherwise,
 * as in a full check). The source is closed at the end, whatever happens.
 */
export function checkPropertiesOnly(source: ObservedSource, opts: { scenario?: string | undefined } = {}): PropertiesOnlyResult {
  const checker = new PropertyChecker({ statusRule: null });
  let events = 0;
  let scenario: string | null = null;
  let sawEnd = false;
  // Where the first violation was found (the events are not kept: the checker's memory
  // follows what is in flight, and so does this loop's).
  let first: ObservedEvent | null = null;
  try {
    for (let o = source.next(); o !== null; o = source.next()) {
      const e = o.event;
      if (e.ev === 'scenario.begin' && scenario === null) {
        scenario = e.name;
        if (opts.scenario !== undefined && e.name !== opts.scenario) {
          throw new InputError(`this trace is of scenario "${e.name}", not "${opts.scenario}"`, { file: o.file, line: o.line, field: 'name' }, {
            hint: 'give --scenario the scenario the trace was recorded from, or leave it out',
          });
        }
      }
      if (e.ev === 'scenario.end') sawEnd = true;
      const before = checker.violations.length;
      checker.onEvent(e);
      events++;
      if (first === null && checker.violations.length > before) first = o;
    }
  } finally {
    source.close();
  }
  const violations = checker.finish(sawEnd ? null : { reason: 'the trace has no scenario.end' });
  if (violations.length === 0) return { scenario, result: { verdict: 'pass', events, failedProperties: [] } };
  // The first violation was found at `first`, or (when null) only at the end: something lost or a hang.
  const v = violations[0]!;
  const at = first;
  return {
    scenario,
    result: {
      verdict: 'diverge',
      class: v.class,
      message: at ? `${at.file}:${at.line}: ${v.message}` : v.message,
      firstUnexplained: at,
      expected: [],
      failedProperties: [...new Set(violations.map((x) => x.property))],
      events,
    },
  };
}
