// A packet the ring reader cannot accept (unknown type or flag) is stepped over, as Linux
// and DPDK do, and named: a ring.format event with its offset, divergence class
// ring-format. Before, the reader threw and never moved again.
import { describe, expect, it } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { checkReplayFirst, checkTrace } from '../../src/check/replay.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const suite = await loadScenarioPaths(['bench/scenarios']);
const s = suite.find((x) => x.name === 'inflight-host-transactions')!;
const source = (events: TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: 'real.jsonl', line: i + 1 })));

function run(faults: 'unknown-packet-type'[]) {
  const sink = new MemorySink('hyperv');
  const r = executeScenario(s, { seed: 3, sink, faults });
  return { events: sink.events, r };
}

describe('a packet of unknown type in a ring', () => {
  it('is skipped by the guest, which goes on reading every packet after it, and named with its offset', () => {
    const clean = run([]);
    const faulty = run(['unknown-packet-type']);
    expect(faulty.r.faultsFired).toEqual(['unknown-packet-type']);
    const formats = faulty.events.filter((e) => e.ev === 'ring.format');
    expect(formats).toHaveLength(1);
    expect(formats[0]).toMatchObject({ side: 'guest', ev: 'ring.format', ch: 0, dir: 'h2g', type: 0xa, flags: 0 });
    // The ring did not stall: the guest received and completed what it did in the clean run.
    const count = (es: TraceEvent[], ev: string) => es.filter((e) => e.ev === ev && e.side === 'guest').length;
    expect(count(faulty.events, 'pkt.recv')).toBe(count(clean.events, 'pkt.recv'));
    expect(count(faulty.events, 'pkt.complete')).toBe(count(clean.events, 'pkt.complete'));
    expect(faulty.r.hang).toBeNull();
  });

  it('is the divergence ring-format, with its offset, for the checker and the replay alone', () => {
    const { events } = run(['unknown-packet-type']);
    const offset = (events.find((e) => e.ev === 'ring.format') as { offset: number }).offset;
    const full = checkTrace(s, source(events));
    expect(full.verdict).toBe('diverge');
    if (full.verdict !== 'diverge') return;
    expect(full.class).toBe('ring-format');
    expect(full.failedProperties).toEqual(['ring-format']);
    expect(full.message).toContain(`offset ${offset}`);
    expect(full.firstUnexplained?.event.ev).toBe('ring.format');
    expect(checkReplayFirst(s, () => source(events))).toEqual(full);
    const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of events) checker.onEvent(e);
    expect(checker.finish(null).map((v) => v.class)).toEqual(['ring-format']);
  });
});
