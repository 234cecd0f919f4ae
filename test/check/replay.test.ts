// Trace validation: the emulator explains every clean trace, whatever schedule produced
// it, and flags every trace in which a platform bug (a fault mode) acted, with the
// fault's class. This is the test that proves the checker.
import { describe, expect, it } from 'vitest';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { checkReplayFirst, checkTrace, NOT_COMPARED as NOT_COMPARED_FIELDS } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { FAULT_CLASS, FAULT_MODES, type FaultMode } from '../../src/vmbus/faults.ts';
import { findReproduction, minimise, reproduces } from '../../src/check/minimise.ts';
import type { EventName, TraceEvent } from '../../src/trace/schema.ts';
import { EVENT_FIELDS, type FieldKind, type FieldTable } from '../../src/trace/validate.ts';
import { InputError } from '../../src/errors.ts';

const suite = await loadScenarioPaths(['bench/scenarios']);
const byName = (n: string) => suite.find((s) => s.name === n)!;

function observe(s: (typeof suite)[number], seed: number, faults: FaultMode[] = [], choices = {}) {
  const sink = new MemorySink('hyperv');
  const r = executeScenario(s, { seed, sink, faults, choices });
  return { events: sink.events, fired: r.faultsFired };
}
const source = (events: TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: 'real.jsonl', line: i + 1 })));

describe('trace validation', () => {
  it('explains every clean trace of the suite, from any seed', () => {
    for (const s of suite) {
      for (const seed of [1, 2, 3, 11]) {
        const res = checkTrace(s, source(observe(s, seed).events));
        expect(res.verdict, `${s.name} seed ${seed}: ${res.verdict === 'diverge' ? res.message : ''}`).toBe('pass');
      }
    }
  });

  it('gives the full check\'s result when the properties run only on a divergence (checkReplayFirst)', () => {
    // Without the properties the verdict is the same on every trace, clean or faulty; a
    // passing trace is read once, a diverging one twice and reported as the full check does.
    let diverged = 0;
    for (const s of suite) {
      for (const fault of [null, ...FAULT_MODES]) {
        const { events } = observe(s, 2, fault ? [fault] : []);
        const full = checkTrace(s, source(events));
        expect(checkTrace(s, source(events), { properties: false }).verdict, `${s.name} ${fault}`).toBe(full.verdict);
        let opened = 0;
        const first = checkReplayFirst(s, () => (opened++, source(events)));
        expect(first, `${s.name} ${fault}`).toEqual(full);
        expect(opened).toBe(full.verdict === 'pass' ? 1 : 2);
        if (full.verdict === 'diverge') diverged++;
      }
    }
    expect(diverged).toBeGreaterThan(10);
  });

  it.each(FAULT_MODES.map((f) => [f]))('flags every trace in which %s acted, with its class, and only those', (fault) => {
    let acted = 0;
    for (const s of suite) {
      for (const seed of [1, 2, 3]) {
        const { events, fired } = observe(s, seed, [fault]);
        const res = checkTrace(s, source(events));
        if (fired.includes(fault)) {
          acted++;
          expect(res.verdict, `${s.name} seed ${seed}`).toBe('diverge');
          if (res.verdict === 'diverge') expect(FAULT_CLASS[fault], `${s.name} seed ${seed}: ${res.message}`).toContain(res.class);
        } else {
          expect(res.verdict, `${s.name} seed ${seed}`).toBe('pass');
        }
      }
    }
    expect(acted).toBeGreaterThan(0);
  });

  it('names the first unexplained event with its line, and what the model allowed there', () => {
    const { events } = observe(byName('inflight-host-transactions'), 1, ['corrupt-savebuf']);
    const res = checkTrace(byName('inflight-host-transactions'), source(events));
    expect(res.verdict).toBe('diverge');
    if (res.verdict !== 'diverge') return;
    expect(res.class).toBe('savebuf-mismatch');
    expect(res.firstUnexplained?.event.ev).toBe('pkt.restore');
    expect(res.firstUnexplained?.line).toBe(events.findIndex((e) => e.seq === res.firstUnexplained!.event.seq) + 1);
    expect(res.expected[0]).toMatch(/^host pkt.restore ch=0 dir=h2g tx=\d+ saveDigest=/);
  });

  it('explains a KMCL client guest\'s own Enabled before Opened and Started before Active, and no other extra state', () => {
    const s = byName('inflight-host-transactions');
    const { events } = observe(s, 1);
    // As the C Windows guest writes them (devices: c-windows): its Enable, and its Start between Opened and Active.
    const client = events.flatMap((e) => {
      if (e.ev !== 'ch.state' || e.side !== 'guest') return [e];
      if (e.state === 'Opened') return [{ ...e, state: 'Enabled' } as TraceEvent, e];
      if (e.state === 'Active') return [{ ...e, state: 'Started' } as TraceEvent, e];
      return [e];
    });
    expect(client.length).toBe(events.length + 2);
    expect(checkTrace(s, source(client)).verdict).toBe('pass');
    // Only there: an Enabled in place of Active, or on another channel, is not the client's own.
    const active = events.findIndex((e) => e.ev === 'ch.state' && e.side === 'guest' && e.state === 'Active');
    const wrongPlace = [...events.slice(0, active), { ...events[active]!, state: 'Enabled' } as TraceEvent, ...events.slice(active)];
    expect(checkTrace(s, source(wrongPlace))).toMatchObject({ verdict: 'diverge', class: 'state-order' });
    const opened = events.findIndex((e) => e.ev === 'ch.state' && e.side === 'guest' && e.state === 'Opened');
    const otherCh = [...events.slice(0, opened), { ...events[opened]!, state: 'Enabled', ch: 5 } as TraceEvent, ...events.slice(opened)];
    expect(checkTrace(s, source(otherCh)).verdict).toBe('diverge');
    // A Started with no Enabled of its own before it is no client's: a guest that opens
    // an offered channel (a Linux driver) must not trace it.
    const startedOnly = events.flatMap((e) => (e.ev === 'ch.state' && e.side === 'guest' && e.state === 'Active' ? [{ ...e, state: 'Started' } as TraceEvent, e] : [e]));
    expect(checkTrace(s, source(startedOnly))).toMatchObject({ verdict: 'diverge', class: 'state-order' });
  });

  it('reports a trace that stops before scenario.end as a hang', () => {
    const { events } = observe(byName('inflight-host-transactions'), 1);
    const cut = events.findIndex((e) => e.ev === 'vm.restore.end');
    const res = checkTrace(byName('inflight-host-transactions'), source(events.slice(0, cut + 3)));
    expect(res.verdict === 'diverge' && res.class).toBe('hang');
  });

  it('flags an event after the scenario ended as spurious', () => {
    const { events } = observe(byName('idle-save-restore'), 1);
    const recv = events.find((e) => e.ev === 'pkt.recv')!;
    const res = checkTrace(byName('idle-save-restore'), source([...events, { ...recv, seq: 10_000 } as TraceEvent]));
    expect(res.verdict).toBe('diverge');
    if (res.verdict === 'diverge') {
      expect(res.class).toBe('duplicated'); // the trace receives that packet a second time
      expect(res.firstUnexplained?.line).toBe(events.length + 1);
    }
  });

  it('a trace from a host with another documented-gap behaviour diverges under the defaults and passes under that choice', () => {
    const s = byName('ring-full-library-queue');
    const { events } = observe(s, 1, [], { restoreCallbacks: 'started-only' });
    expect(checkTrace(s, source(events)).verdict).toBe('diverge');
    expect(checkTrace(s, source(events), { choices: { restoreCallbacks: 'started-only' } }).verdict).toBe('pass');
  });

  it.each([['save-and-continue', 'pulse'], ['pulse', 'save-and-continue']] as const)(
    'explains a checkpoint trace of a host that did runningCheckpoint %s under that option, and not under %s',
    (shown, other) => {
      const s = byName('checkpoint-apply');
      for (const seed of [1, 2, 3]) {
        const { events } = observe(s, seed, [], { runningCheckpoint: shown });
        expect(checkTrace(s, source(events), { choices: { runningCheckpoint: shown } }).verdict, `seed ${seed}`).toBe('pass');
        const res = checkTrace(s, source(events), { choices: { runningCheckpoint: other } });
        expect(res.verdict, `seed ${seed}`).toBe('diverge');
        // Where the two part: right after the save, the host's next state.
        if (res.verdict === 'diverge') expect(res.firstUnexplained?.event).toMatchObject({ side: 'host', ev: 'ch.state' });
      }
    },
  );

  it('minimises a reproducible divergence to a smaller scenario that still shows it', () => {
    const s = byName('repeated-save-restore');
    const repro = findReproduction(s, 'duplicated', ['restore-twice']);
    expect(repro).not.toBeNull();
    const { scenario } = minimise(s, repro!);
    expect(reproduces(scenario, repro!)).toBe(true);
    expect(scenario.steps.length).toBeLessThan(s.steps.length);
    const size = (x: typeof s) => x.steps.reduce((n, st) => n + ('count' in st ? st.count : 1), 0);
    expect(size(scenario)).toBeLessThan(size(s));
  });
});

describe('what the replay compares', () => {
  // Fields a real trace may differ in and still be explained: the one list in replay.ts,
  // each with its reason.
  const NOT_COMPARED = new Set(Object.keys(NOT_COMPARED_FIELDS));

  it('names a reason for every field it does not compare, and only fields the schema has', () => {
    for (const [what, why] of Object.entries(NOT_COMPARED_FIELDS)) {
      const [ev, field] = what.split(' ') as [EventName, string];
      expect(EVENT_FIELDS[ev].map(([f]) => f), what).toContain(field);
      expect(why.length, what).toBeGreaterThan(10);
    }
  });

  /** A different value of the same kind, so the event stays well-formed. */
  function changed(kind: FieldKind, v: unknown): unknown {
    switch (kind) {
      case 'digest':
      case 'status': {
        const s = v as string;
        return s.slice(0, -1) + (s.endsWith('0') ? '1' : '0');
      }
      case 'bool':
        return !v;
      case 'dir':
        return v === 'g2h' ? 'h2g' : 'g2h';
      case 'name':
        return `${String(v)}-x`;
      default:
        return (v as number) + 1;
    }
  }

  it('diverges on a change to any other field of any event the suite writes, by the replay alone (no property checks)', () => {
    const traces = suite.map((s) => ({ s, events: observe(s, 1).events }));
    const tried = new Set<string>();
    for (const [ev, table] of Object.entries(EVENT_FIELDS) as Array<[EventName, FieldTable]>) {
      const found = traces.map((t) => ({ ...t, at: t.events.findIndex((e) => e.ev === ev) })).find((t) => t.at >= 0);
      if (!found) continue;
      for (const [field, kind] of table) {
        const what = `${ev} ${field}`;
        if (NOT_COMPARED.has(what)) continue;
        const e0 = found.events[found.at]! as unknown as Record<string, unknown>;
        // Every id also 2^32 higher: a checker that kept 32 bits of it would not see the change.
        const values = kind === 'id' ? [changed(kind, e0[field]), (e0[field] as number) + 2 ** 32] : [changed(kind, e0[field])];
        for (const value of values) {
        const events = found.events.slice();
        const e = events[found.at]! as unknown as Record<string, unknown>;
        events[found.at] = { ...e, [field]: value } as unknown as TraceEvent;
        // A trace of another scenario (scenario.begin's name) is refused as bad input.
        const outcome = (): string => {
          try {
            return checkTrace(found.s, source(events), { properties: false }).verdict;
          } catch (err) {
            if (err instanceof InputError) return 'refused';
            throw err;
          }
        };
        expect(outcome(), `${what} = ${String(value)}`).toBe(what === 'scenario.begin name' ? 'refused' : 'diverge');
        }
        tried.add(ev);
      }
    }
    // Every event with compared fields was found in the suite's traces but these.
    const withFields = (Object.keys(EVENT_FIELDS) as EventName[]).filter((ev) => EVENT_FIELDS[ev].some(([f]) => !NOT_COMPARED.has(`${ev} ${f}`)));
    // (ring.format never appears in a clean trace: the replay diverges on it whatever its
    // fields. pkt.timeout is a Linux driver's alone: replay-send-timeout.test.ts changes its fields.)
    expect(withFields.filter((ev) => !tried.has(ev))).toEqual(['pkt.fail', 'ring.format', 'kmcl.violation', 'pkt.timeout']);
  });
});
