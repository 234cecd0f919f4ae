// `bench check --properties-only` judges a driver the sample model does not know: a trace
// with other payloads and statuses passes it, where trace validation fails at the first
// packet, and it still fails when a device-independent property breaks.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { checkTrace } from '../../src/check/replay.ts';
import { PropertyChecker, statusRuleOf } from '../../src/check/properties.ts';
import { checkPropertiesOnly } from '../../src/check/properties-only.ts';
import { InputError } from '../../src/errors.ts';
import { asForeignDevice } from './support/foreign-device.ts';

const suite = await loadScenarioPaths(['bench/scenarios']);
const byName = (name: string) => suite.find((s) => s.name === name)!;

function traceOf(name: string, seed = 1): TraceEvent[] {
  const sink = new MemorySink();
  executeScenario(byName(name), { seed, sink });
  return sink.events;
}

const source = (events: readonly TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
const propertiesOnly = (events: readonly TraceEvent[], scenario?: string) => checkPropertiesOnly(source(events), { scenario }).result;
const without = (events: readonly TraceEvent[], i: number) => events.filter((_, j) => j !== i);

const inflight = asForeignDevice(traceOf('inflight-host-transactions'));

describe('properties-only check', () => {
  it('passes every scenario of the suite, as the emulator writes it and as a foreign device', () => {
    for (const s of suite) {
      const events = traceOf(s.name, 3);
      expect(propertiesOnly(events), s.name).toMatchObject({ verdict: 'pass', events: events.length });
      expect(propertiesOnly(asForeignDevice(events)), s.name).toMatchObject({ verdict: 'pass' });
    }
  });

  it('passes a foreign device that full trace validation fails at its first packet with class payload', () => {
    expect(propertiesOnly(inflight)).toEqual({ verdict: 'pass', events: inflight.length, failedProperties: [] });
    const full = checkTrace(byName('inflight-host-transactions'), source(inflight));
    expect(full).toMatchObject({ verdict: 'diverge', class: 'payload' });
    expect(full.verdict === 'diverge' && full.firstUnexplained?.event.ev).toBe('pkt.send');
  });

  it('does not apply the sample status rule, which the full property checker does', () => {
    const full = new PropertyChecker({ statusRule: statusRuleOf({}) });
    for (const e of inflight) full.onEvent(e);
    expect(full.finish(null).map((v) => v.class)).toContain('status');
  });

  it('across a rescind: passes the cancels of what was in flight, fails when one is missing (lost) or comes without a rescind (spurious)', () => {
    const rescinded = asForeignDevice(traceOf('rescind-and-reoffer'));
    expect(propertiesOnly(rescinded)).toMatchObject({ verdict: 'pass' });
    const i = rescinded.findIndex((e) => e.ev === 'pkt.cancel' && e.side === 'guest');
    const lost = propertiesOnly(without(rescinded, i));
    expect(lost).toMatchObject({ verdict: 'diverge', class: 'lost' });
    expect(lost.failedProperties).toContain('exactly-once-completion');
    const r = rescinded.findIndex((e) => e.ev === 'ch.rescind');
    const early = [...rescinded.slice(0, r), rescinded[i]!, ...without(rescinded, i).slice(r)];
    expect(propertiesOnly(early)).toMatchObject({ verdict: 'diverge', class: 'spurious' });
  });

  it('fails when a completion is removed: lost, exactly-once-completion', () => {
    const i = inflight.findIndex((e) => e.ev === 'pkt.completion');
    const r = propertiesOnly(without(inflight, i));
    expect(r).toMatchObject({ verdict: 'diverge', class: 'lost', firstUnexplained: null });
    expect(r.failedProperties).toContain('exactly-once-completion');
  });

  // A completion in the future a checkpoint discards never happened; any other is owed.
  const owed = (events: readonly TraceEvent[]): number[] => {
    const lastApply = events.findLastIndex((e) => e.ev === 'vm.checkpoint.apply.begin');
    return events.flatMap((e, i) => (e.ev === 'pkt.completion' && i > lastApply ? [i] : []));
  };

  it('fails on any one completion removed from any scenario of the suite (a foreign device)', () => {
    const traces = suite.map((s) => asForeignDevice(traceOf(s.name, 5))).filter((t) => owed(t).length > 0);
    fc.assert(
      fc.property(fc.nat(traces.length - 1), fc.nat(), (t, k) => {
        const events = traces[t]!;
        const at = owed(events);
        const r = propertiesOnly(without(events, at[k % at.length]!));
        expect(r.verdict).toBe('diverge');
        expect(r.failedProperties).toContain('exactly-once-completion');
      }),
      { numRuns: 40 },
    );
  });

  it('names the line of a packet received twice: duplicated', () => {
    const i = inflight.findIndex((e) => e.ev === 'pkt.recv');
    const events = [...inflight.slice(0, i + 1), { ...inflight[i]!, seq: inflight[i]!.seq + 0.5 } as TraceEvent, ...inflight.slice(i + 1)];
    const r = propertiesOnly(events);
    expect(r).toMatchObject({ verdict: 'diverge', class: 'duplicated', firstUnexplained: { file: 't.jsonl', line: i + 2 } });
    expect(r.verdict === 'diverge' && r.message).toMatch(/^t\.jsonl:\d+: /);
  });

  it('fails a restore whose SaveBuf digest is not the saved one: savebuf-mismatch', () => {
    const i = inflight.findIndex((e) => e.ev === 'pkt.restore');
    const events = inflight.map((e, j) => (j === i ? { ...e, saveDigest: '0123456789abcdef' } : e));
    expect(propertiesOnly(events)).toMatchObject({ verdict: 'diverge', class: 'savebuf-mismatch' });
  });

  it('fails a transaction awaiting completion at a save that was not saved: not-saved', () => {
    const i = inflight.findIndex((e) => e.ev === 'pkt.save');
    expect(propertiesOnly(without(inflight, i))).toMatchObject({ verdict: 'diverge', class: 'not-saved' });
  });

  it('still checks payloads and statuses equal end to end', () => {
    const recv = inflight.findIndex((e) => e.ev === 'pkt.recv');
    expect(propertiesOnly(inflight.map((e, j) => (j === recv ? { ...e, digest: '0123456789abcdef' } : e)))).toMatchObject({ class: 'payload' });
    const completion = inflight.findIndex((e) => e.ev === 'pkt.completion');
    expect(propertiesOnly(inflight.map((e, j) => (j === completion ? { ...e, status: 'c0000001' } : e)))).toMatchObject({ class: 'status' });
  });

  it('fails channel states out of KMCL order: state-order', () => {
    const i = inflight.findIndex((e) => e.ev === 'ch.state' && e.side === 'host' && e.state === 'Active');
    expect(propertiesOnly(without(inflight, i))).toMatchObject({ verdict: 'diverge', class: 'state-order' });
  });

  it('fails a checkpoint applied that was never taken: missing-event', () => {
    const cp = asForeignDevice(traceOf('checkpoint-apply'));
    expect(propertiesOnly(cp)).toMatchObject({ verdict: 'pass' });
    const taken = cp.findIndex((e) => e.ev === 'vm.checkpoint.end');
    expect(propertiesOnly(without(cp, taken))).toMatchObject({ verdict: 'diverge', class: 'missing-event' });
  });

  it('fails a trace without scenario.end: hang, progress', () => {
    const r = propertiesOnly(inflight.filter((e) => e.ev !== 'scenario.end'));
    expect(r).toMatchObject({ verdict: 'diverge', class: 'hang' });
    expect(r.failedProperties).toContain('progress');
  });

  it('takes the scenario name from the trace, and refuses a trace of another scenario than the one given', () => {
    expect(checkPropertiesOnly(source(inflight)).scenario).toBe('inflight-host-transactions');
    expect(() => propertiesOnly(inflight, 'pause-resume')).toThrow(InputError);
    expect(() => propertiesOnly(inflight, 'pause-resume')).toThrow(/t\.jsonl:1.*not "pause-resume"/);
  });
});
