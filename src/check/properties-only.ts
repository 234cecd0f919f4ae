// `bench check --properties-only`: a trace checked against the device-independent
// properties alone, without replaying the device's model.
//
// Trace validation (replay.ts) needs a model of the device: it replays the scenario on the
// TypeScript twins of the scenario's device module, so a driver with another message pattern,
// other payloads or another status rule diverges at its first packet (class `payload`).
// What holds for every device is what VMBus and KMCL promise whatever the bytes are:
// exactly one completion per transaction that asked for one and none without a send,
// each packet received exactly once, a transaction in flight at a save saved and restored
// with the same SaveBuf digest, channel states in KMCL's order, a checkpoint rolling
// everything back, and a run that finishes. The property checker (properties.ts) checks
// all of those online; here it runs alone, with no status rule (an opaque device), over
// the observed events in file order. A device whose module is declared opaque
// (src/device-api/device-module.ts, `statusRule: 'opaque'`) is checked the same way.
//
// What this cannot see, and says so in every output (NOT_CHECKED): whether each payload
// and status is the one the device's protocol gives, and whether the events come in an
// order, and in a number, the scenario's model allows.

import { InputError } from '../errors.ts';
import { fileSource, normaliseToArray } from '../trace/normalise.ts';
import { ArraySource, FileSource, type ObservedEvent, type ObservedSource } from './observed.ts';
import { PropertyChecker, type PropertyName } from './properties.ts';
import { describeEvent, type CheckResult } from './replay.ts';

/** What a properties-only check does not check, one sentence each (terminal, JSON and report). */
export const NOT_CHECKED: readonly string[] = [
  "payload rules: whether each packet's and each completion's payload is the one the device's protocol gives (the device's model was not replayed)",
  "status rules: whether each completion's status is the one the device's protocol gives",
  "the scenario's traffic: whether the trace holds the packets, holds and order the scenario's model allows",
];

/**
 * What it does check, by the checker's names: every property of properties.ts, payload
 * and status-rule only as equality end to end. (A property the checker gains, such as
 * the KMCL misuse events', is checked here at once, as the checker runs whole; list it
 * here too, so the output names it.)
 */
export const CHECKED: readonly PropertyName[] = [
  'exactly-once-completion',
  'exactly-once-delivery',
  'payload', // equal end to end only: sent = received, completed = completion
  'status-rule', // equal end to end only: the completion's status is the receiver's
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

/** `bench check --properties-only`'s report: what `bench check` reports, and what was left out. */
export interface PropertiesOnlyReport {
  mode: 'properties-only';
  scenario: string;
  traces: string[];
  result: CheckResult;
  /** set when the last line of a trace was cut short (a writer that crashed) */
  truncatedAt: { file: string; line: number } | null;
  /** the property checker's names of what was checked */
  checked: string[];
  /** what a full check would have checked and this one did not, one sentence each */
  notChecked: string[];
}

/**
 * Checks trace files: one trace, or a run's host, guest and bench files, merged on their
 * bench events as a full check merges them. `scenario`, when given, must be the name the
 * trace gives; without it the report takes the trace's own.
 */
export async function checkTraceFilesPropertiesOnly(traces: readonly string[], opts: { scenario?: string | undefined } = {}): Promise<PropertiesOnlyReport> {
  if (traces.length === 0) throw new InputError('no trace to check: give --trace <file>', { field: '--trace' });
  let source: ObservedSource;
  let truncatedAt: () => PropertiesOnlyReport['truncatedAt'] = () => null;
  if (traces.length === 1) {
    const file = traces[0]!;
    const src = new FileSource(file);
    source = src;
    truncatedAt = () => (src.truncatedAt === null ? null : { file, line: src.truncatedAt });
  } else {
    const merged = await normaliseToArray(traces.map((t) => fileSource(t, { ids: { ch: 'auto', tx: 'auto' }, acceptTruncated: true }).source));
    source = new ArraySource(merged.map((n) => ({ event: n.event, file: n.refs[0]!.file, line: n.refs[0]!.line })));
  }
  const { result, scenario } = checkPropertiesOnly(source, opts);
  return {
    mode: 'properties-only',
    scenario: opts.scenario ?? scenario ?? '(unnamed)',
    traces: [...traces],
    result,
    truncatedAt: truncatedAt(),
    checked: [...CHECKED],
    notChecked: [...NOT_CHECKED],
  };
}

/** The human-readable verdict, then what was and was not checked. */
export function formatPropertiesOnlyReport(r: PropertiesOnlyReport): string {
  const lines: string[] = [];
  const res = r.result;
  if (r.truncatedAt) lines.push(`note: ${r.truncatedAt.file}:${r.truncatedAt.line} is cut short (a writer that crashed); the events before it were checked`);
  if (res.verdict === 'pass') {
    lines.push(`pass (properties only)  ${r.scenario}: all ${res.events} events keep the device-independent properties`);
  } else {
    lines.push(`FAIL (properties only)  ${r.scenario}: ${res.class}`);
    lines.push(`  ${res.message}`);
    if (res.firstUnexplained) lines.push(`  first event that breaks a property: ${res.firstUnexplained.file}:${res.firstUnexplained.line}  ${describeEvent(res.firstUnexplained.event)}`);
    if (res.failedProperties.length > 0) lines.push(`  properties broken by the trace: ${res.failedProperties.join(', ')}`);
  }
  lines.push(`  checked: ${r.checked.join(', ')} (payload and status-rule: equal end to end only)`);
  for (const n of r.notChecked) lines.push(`  NOT checked: ${n}`);
  return lines.join('\n');
}
