// `bench check --properties-only`: the traces of a run checked against the
// device-independent properties alone (check/properties-only.ts says which, and why),
// for a driver whose payloads and statuses the sample device model does not know.
// No model is replayed, so there is no documented-gap option to fit and no minimal
// scenario to search for; every output says what was not checked.

import type { Scenario } from '../scenario/model.ts';
import { CHECKED, NOT_CHECKED, checkPropertiesOnly } from '../check/properties-only.ts';
import { describeEvent } from '../check/replay.ts';
import { opener, type CheckReport } from './check-trace.ts';

/** A check report (the same fields as a full check's) that says what it left out. */
export interface PropertiesOnlyReport extends CheckReport {
  mode: 'properties-only';
  /** the property checker's names of what was checked */
  checked: string[];
  /** what a full check would have checked and this one did not, one sentence each */
  notChecked: string[];
}

/**
 * Checks `traces` (one trace, or a run's host, guest and bench files, merged on their
 * bench events as a full check merges them). `scenario`, when given, must be the one
 * the trace names; without it the report takes the trace's own name.
 */
export async function checkTracesPropertiesOnly(traces: readonly string[], opts: { scenario?: Scenario | undefined } = {}): Promise<PropertiesOnlyReport> {
  const open = (await opener(traces))();
  const { result, scenario } = checkPropertiesOnly(open.source, { scenario: opts.scenario?.name });
  return {
    mode: 'properties-only',
    scenario: opts.scenario?.name ?? scenario ?? '(unnamed)',
    traces: [...traces],
    result,
    truncatedAt: open.truncatedAt(),
    fitsChoices: [],
    minimal: null,
    checked: [...CHECKED],
    notChecked: [...NOT_CHECKED],
  };
}

/** The human-readable verdict, then what was not checked. */
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
  lines.push(`  checked: ${r.checked.join(', ')} (payload: digests equal end to end only)`);
  for (const n of r.notChecked) lines.push(`  NOT checked: ${n}`);
  return lines.join('\n');
}
