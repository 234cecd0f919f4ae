// Shared by the rescind and guest-close tests: build a scenario from a literal, run it on
// the emulator, and check every property of its trace, as the bench's checker does.
import { executeScenario } from '../../src/scenario/execute.ts';
import { ScenarioSchema, toScenario, type ScenarioInput, type Scenario } from '../../src/scenario/model.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { PropertyChecker, statusRuleOf } from '../../src/check/properties.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
export const SAMPLE_STATUS_RULE = statusRuleOf({});

export const scenarioNamed = (name: string) => (input: Omit<ScenarioInput, 'name'> & { name?: string }): Scenario =>
  toScenario(ScenarioSchema.parse({ name, ...input }));

export function run(s: Scenario, seed = 1): { events: TraceEvent[]; violations: string[]; hang: string | null } {
  const sink = new MemorySink();
  const r = executeScenario(s, { seed, sink });
  const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  for (const e of sink.events) c.onEvent(e);
  return { events: sink.events, violations: c.finish(r.hang, r.refusedRestores).map((v) => `${v.class}: ${v.message}`), hang: r.hang?.reason ?? null };
}

export type Pkt = TraceEvent & { ch: number; tx: number; dir: string; state?: string };
export const pkts = (events: TraceEvent[], ev: string, side?: string): Pkt[] =>
  events.filter((e) => e.ev === ev && (side === undefined || e.side === side)) as Pkt[];
export const at = (events: TraceEvent[], pred: (e: TraceEvent) => boolean): number => events.findIndex(pred);
