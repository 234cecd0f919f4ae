// blockq, the second device (devices/blockq), built only through the device module
// interface: its scenarios keep every property on the emulator, they really show what sets
// it apart from the sample (replies of varying size, answers out of order, several requests
// outstanding per channel, SaveBuf records of varying size), and the bench catches a broken
// blockq trace through emulate's checker, check's replay and the properties alone.
import { describe, expect, it } from 'vitest';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { PropertyChecker, statusRuleOf } from '../../../src/check/properties.ts';
import { checkTrace } from '../../../src/check/replay.ts';
import { checkPropertiesOnly } from '../../../src/check/properties-only.ts';
import { ArraySource } from '../../../src/check/observed.ts';
import { explore } from '../../../src/check/explore.ts';
import { deviceOf } from '../../../src/device-api/load.ts';
import { devicePath } from '../../../src/scenario/model.ts';

const suite = await loadScenarioPaths(['devices/blockq/scenarios']);
const byName = (n: string) => suite.find((s) => s.name === n)!;
const source = (events: readonly TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: 'real.jsonl', line: i + 1 })));

function run(s: (typeof suite)[number], seed = 1): TraceEvent[] {
  const sink = new MemorySink('emulator');
  executeScenario(s, { seed, sink });
  return sink.events;
}

type Pkt = Extract<TraceEvent, { ev: 'pkt.complete' }>;

describe('blockq on the emulator', () => {
  it('has one scenario per operation, each naming blockq as its device', () => {
    const ops = ['save', 'migrate', 'apply-checkpoint', 'rescind', 'guest-close'];
    expect(suite.map((s) => s.steps.map((st) => st.op)).map((used) => ops.filter((o) => used.includes(o as never))))
      .toEqual([['save'], ['migrate'], ['apply-checkpoint'], ['save', 'rescind'], ['save', 'guest-close']]);
    for (const s of suite) expect(deviceOf(devicePath(s)).name).toBe('blockq');
  });

  it.each(suite.map((s) => [s.name, s] as const))('%s keeps every property, blockq status rule included, on several seeds', (_n, s) => {
    for (const seed of [1, 2, 3]) {
      const checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
      const sink = new MemorySink('emulator');
      const r = executeScenario(s, { seed, sink });
      for (const e of sink.events) checker.onEvent(e);
      expect(checker.finish(r.hang, r.refusedRestores), `${s.name} seed ${seed}`).toEqual([]);
    }
  });

  it('answers with replies of varying size, out of arrival order, several outstanding per channel', () => {
    const events = run(byName('blockq-save-restore'));
    const replies = events.filter((e): e is Pkt => e.ev === 'pkt.complete' && e.side === 'host');
    expect(new Set(replies.map((e) => e.len)).size).toBeGreaterThanOrEqual(4);
    // On channel 1 the requests arrive as tx 1..8; they are answered in another order.
    const ch1 = replies.filter((e) => e.ch === 1).map((e) => Number(e.tx));
    expect(ch1).toHaveLength(8);
    expect(ch1).not.toEqual([...ch1].sort((a, b) => a - b));
    let outstanding = 0;
    let most = 0;
    for (const e of events) {
      if (e.side !== 'host' || !('dir' in e) || e.dir !== 'g2h' || e.ch !== 0) continue;
      if (e.ev === 'pkt.recv') most = Math.max(most, ++outstanding);
      if (e.ev === 'pkt.complete') outstanding--;
    }
    expect(most).toBeGreaterThanOrEqual(4);
  });

  it('saves host events in flight in SaveBuf records of varying size', () => {
    const saves = run(byName('blockq-migrate')).filter((e) => e.ev === 'pkt.save') as Array<Extract<TraceEvent, { ev: 'pkt.save' }>>;
    expect(new Set(saves.map((e) => e.saveLen))).toEqual(new Set([32, 40, 48]));
  });

  it('uses its own status rule: tx % 7 == 3 fails with c0000010, where the sample fails tx % 16 == 15', () => {
    const replies = run(byName('blockq-save-restore')).filter((e): e is Pkt => e.ev === 'pkt.complete');
    for (const e of replies) expect(e.status, `tx ${e.tx}`).toBe(Number(e.tx) % 7 === 3 ? 'c0000010' : '00000000');
  });
});

describe('bench check on blockq traces', () => {
  it.each(suite.map((s) => [s.name, s] as const))('%s: the emulator trace is explained by the replay', (_n, s) => {
    const events = run(s, 2);
    expect(checkTrace(s, source(events))).toMatchObject({ verdict: 'pass', events: events.length });
  });

  it('a completion removed: the replay and the properties alone both fail', () => {
    const s = byName('blockq-save-restore');
    const events = run(s);
    const i = events.findLastIndex((e) => e.ev === 'pkt.completion');
    const broken = events.filter((_, k) => k !== i);
    expect(checkTrace(s, source(broken)).verdict).toBe('diverge');
    expect(checkPropertiesOnly(source(events)).result.verdict).toBe('pass');
    expect(checkPropertiesOnly(source(broken)).result).toMatchObject({ verdict: 'diverge' });
  });

  it('a status that breaks blockq\'s rule (but not the sample\'s) is class status', () => {
    const s = byName('blockq-save-restore');
    const events = run(s).map((e) => (e.ev === 'pkt.complete' && e.tx === 3 && e.ch === 1 ? { ...e, status: '00000000' } : e.ev === 'pkt.completion' && e.tx === 3 && e.ch === 1 && e.side === 'guest' ? { ...e, status: '00000000' } : e));
    const checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
    for (const e of events) checker.onEvent(e);
    expect(checker.finish(null).map((v) => v.class)).toContain('status');
  });
});

describe('bench explore on blockq', () => {
  it('every save point of the checkpoint scenario survives save-restore, migration and checkpoint-apply', () => {
    const r = explore(byName('blockq-checkpoint'), { seed: 1, ops: ['save-restore', 'migrate', 'checkpoint-apply'] });
    expect(r.truncated).toBe(false);
    expect(r.schedules).toBeGreaterThan(100);
    expect(r.failures).toEqual([]);
  });

  it('finds a platform bug in blockq runs (restore-twice: duplicated)', () => {
    const r = explore(byName('blockq-migrate'), { seed: 1, ops: ['save-restore'], faults: ['restore-twice'], maxSchedules: 40 });
    expect(r.failures.length).toBeGreaterThan(0);
    expect(r.failures[0]!.violations.map((v) => v.class)).toContain('duplicated');
  });
});
