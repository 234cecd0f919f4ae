// Divergence classes name what the observed trace did relative to the model: a trace that
// lacks an event the model writes lost it (lost, not-saved, not-restored, ...); a trace
// with an event the model never writes has a spurious one; one event twice is duplicated.
// Each way of breaking a real trace is applied to every event it fits in the suite's
// traces, and the class must follow, from the full check and from the replay-first check.
import { describe, expect, it } from 'vitest';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { checkReplayFirst, checkTrace } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import type { DivergenceClass } from '../../src/check/properties.ts';
import type { GapChoices } from '../../src/vmbus/choices.ts';

const suite = await loadScenarioPaths(['bench/scenarios']);
const source = (events: TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: 'real.jsonl', line: i + 1 })));

function observe(s: (typeof suite)[number], seed: number, choices: Partial<GapChoices>): TraceEvent[] {
  const sink = new MemorySink('hyperv');
  executeScenario(s, { seed, sink, choices });
  return sink.events;
}

/**
 * The suite under the default choices, and what a host that takes running checkpoints the
 * other way (runningCheckpoint pulse) writes for the scenarios that take one, checked
 * under that choice.
 */
const RUNS: Array<{ s: (typeof suite)[number]; choices: Partial<GapChoices> }> = [
  ...suite.map((s) => ({ s, choices: {} })),
  ...suite.filter((s) => s.steps.some((st) => st.op === 'checkpoint')).map((s) => ({ s, choices: { runningCheckpoint: 'pulse' as const } })),
];

type Break = {
  /** what is done to the event at index i (null: does not apply to it) */
  apply: (events: TraceEvent[], i: number) => TraceEvent[] | null;
  expect: DivergenceClass;
  /**
   * Where the first thing the trace then lacks is another event the model writes: a
   * completion removed before a save leaves its transaction awaiting in the model, which
   * saves it, and the save is what the trace first lacks.
   */
  orFirst?: DivergenceClass;
};

const without = (events: TraceEvent[], i: number) => [...events.slice(0, i), ...events.slice(i + 1)];
const twice = (events: TraceEvent[], i: number) => [...events.slice(0, i + 1), events[i]!, ...events.slice(i + 1)];
const renumber = (events: TraceEvent[]) => events.map((e, k) => ({ ...e, seq: k + 1 }) as TraceEvent);
const is = (e: TraceEvent, ev: string) => e.ev === ev;

const BREAKS: Record<string, Break> = {
  'a completion removed': { apply: (es, i) => (is(es[i]!, 'pkt.completion') ? without(es, i) : null), expect: 'lost', orFirst: 'not-saved' },
  'a receive removed': { apply: (es, i) => (is(es[i]!, 'pkt.recv') ? without(es, i) : null), expect: 'lost' },
  'a receiver\'s complete removed': { apply: (es, i) => (is(es[i]!, 'pkt.complete') ? without(es, i) : null), expect: 'lost' },
  'a save removed': { apply: (es, i) => (is(es[i]!, 'pkt.save') ? without(es, i) : null), expect: 'not-saved' },
  'a restore removed': { apply: (es, i) => (is(es[i]!, 'pkt.restore') ? without(es, i) : null), expect: 'not-restored' },
  'a receive written twice': { apply: (es, i) => (is(es[i]!, 'pkt.recv') ? twice(es, i) : null), expect: 'duplicated' },
  'a completion written twice': { apply: (es, i) => (is(es[i]!, 'pkt.completion') ? twice(es, i) : null), expect: 'duplicated' },
  'an extra send of a transaction the model never made': {
    apply: (es, i) => {
      const e = es[i]!;
      if (e.ev !== 'pkt.send') return null;
      return [...es.slice(0, i + 1), { ...e, tx: 900_000 }, ...es.slice(i + 1)];
    },
    expect: 'spurious',
  },
  'an extra receive of a transaction never sent': {
    apply: (es, i) => {
      const e = es[i]!;
      if (e.ev !== 'pkt.recv') return null;
      return [...es.slice(0, i + 1), { ...e, tx: 900_000 }, ...es.slice(i + 1)];
    },
    expect: 'spurious',
  },
  'an extra completion of a transaction never sent': {
    apply: (es, i) => {
      const e = es[i]!;
      if (e.ev !== 'pkt.completion') return null;
      return [...es.slice(0, i + 1), { ...e, tx: 900_000 }, ...es.slice(i + 1)];
    },
    expect: 'spurious',
  },
};

describe('divergence classes', () => {
  it.each(Object.entries(BREAKS))('%s', (_name, b) => {
    const wrong: string[] = [];
    let tried = 0;
    for (const { s, choices } of RUNS) {
      const events = observe(s, 3, choices);
      // Every position would be thousands of checks: every 11th that fits, and the first and last.
      const fits = events.map((_, i) => i).filter((i) => b.apply(events, i) !== null);
      const picks = fits.filter((_, k) => k % 11 === 0 || k === fits.length - 1);
      for (const i of picks) {
        const broken = renumber(b.apply(events, i)!);
        const full = checkTrace(s, source(broken), { choices });
        tried++;
        const got = full.verdict === 'diverge' ? full.class : 'pass';
        // A completion removed between a checkpoint and its apply belongs to the discarded
        // future: the trace is still one the model writes, and passes.
        if (got === 'pass' && s.steps.some((st) => st.op === 'apply-checkpoint') && b.expect === 'lost') continue;
        const name = `${s.name}${choices.runningCheckpoint ? ` (${choices.runningCheckpoint})` : ''}`;
        if (got !== b.expect && got !== b.orFirst) wrong.push(`${name} @${i} (${events[i]!.ev}): ${got}${full.verdict === 'diverge' ? ` - ${full.message}` : ''}`);
        else expect(checkReplayFirst(s, () => source(broken), { choices })).toEqual(full);
      }
    }
    expect(tried).toBeGreaterThan(0);
    expect(wrong.slice(0, 8), `${wrong.length} of ${tried} misclassed`).toEqual([]);
  });
});
