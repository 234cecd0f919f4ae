import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { executeScenario, type InjectedOp } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { ScenarioSchema, toScenario, type ScenarioInput } from '../../src/scenario/model.ts';
import { MemorySink, StampingSink, formatEvent } from '../../src/trace/sink.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import { trafficStep } from './arbitraries.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const suite = await loadScenarioPaths(['bench/scenarios']);

function traceText(s: (typeof suite)[number], seed: number): string {
  const sink = new MemorySink();
  executeScenario(s, { seed, sink });
  return sink.events.map(formatEvent).join('\n');
}

function check(s: (typeof suite)[number], seed: number, inject?: { at: number; op: InjectedOp }) {
  const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  const r = executeScenario(s, { seed, sink: new StampingSink('emulator', (e) => checker.onEvent(e)), inject });
  return { r, violations: checker.finish(r.hang, r.refusedRestores) };
}

describe('executing scenarios on the emulator', () => {
  it.each(suite.map((s) => [s.name, s] as const))('%s keeps every property', (_name, s) => {
    expect(check(s, 1).violations).toEqual([]);
  });

  it('gives a byte-identical trace for the same scenario and seed', () => {
    for (const s of suite) expect(traceText(s, 7)).toBe(traceText(s, 7));
  });

  it('takes its interleavings from the seed', () => {
    const s = suite.find((x) => x.name === 'repeated-save-restore')!;
    const traces = new Set([1, 2, 3, 4, 5].map((seed) => traceText(s, seed)));
    expect(traces.size).toBeGreaterThan(1);
  });

  it('saves and restores the host transactions in flight at a save', () => {
    const s = suite.find((x) => x.name === 'inflight-host-transactions')!;
    const sink = new MemorySink();
    executeScenario(s, { seed: 1, sink });
    const saves = sink.events.filter((e) => e.ev === 'pkt.save');
    const restores = sink.events.filter((e) => e.ev === 'pkt.restore');
    expect(saves.length).toBe(12);
    expect(restores.map((e) => (e as { saveDigest: string }).saveDigest)).toEqual(saves.map((e) => (e as { saveDigest: string }).saveDigest));
  });

  it('queues packets in the library when the ring is full and writes each once after restore', () => {
    const s = suite.find((x) => x.name === 'ring-full-library-queue')!;
    const sink = new MemorySink();
    executeScenario(s, { seed: 1, sink });
    expect(sink.events.filter((e) => e.ev === 'pkt.queued').length).toBeGreaterThan(50);
    const recv = sink.events.filter((e) => e.ev === 'pkt.recv' && e.dir === 'h2g').map((e) => (e as { tx: number }).tx);
    expect(recv).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
  });

  it('after a checkpoint is applied, what was sent after it never completes', () => {
    const s = suite.find((x) => x.name === 'checkpoint-apply')!;
    const sink = new MemorySink();
    executeScenario(s, { seed: 1, sink });
    const apply = sink.events.findIndex((e) => e.ev === 'vm.checkpoint.apply.end');
    const after = sink.events.slice(apply).filter((e) => e.ev === 'pkt.completion' && e.dir === 'h2g').map((e) => (e as { tx: number }).tx);
    // tx 1..8 were in flight at the checkpoint and complete after it; 9..24 were discarded.
    expect(after.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  describe('a checkpoint of a running VM (the runningCheckpoint choice)', () => {
    const s = suite.find((x) => x.name === 'checkpoint-apply')!;
    function taking(runningCheckpoint: 'save-and-continue' | 'pulse') {
      const sink = new MemorySink();
      executeScenario(s, { seed: 1, sink, choices: { runningCheckpoint } });
      const begin = sink.events.findIndex((e) => e.ev === 'vm.checkpoint.begin');
      const end = sink.events.findIndex((e) => e.ev === 'vm.checkpoint.end');
      const during = sink.events.slice(begin + 1, end);
      return { events: sink.events, during, hostStates: during.filter((e) => e.ev === 'ch.state' && e.side === 'host').map((e) => (e as { state: string }).state) };
    }
    const digests = (es: TraceEvent[], ev: string) => es.filter((e) => e.ev === ev).map((e) => (e as { saveDigest: string }).saveDigest);

    it('save-and-continue (the default): Pause, the save, then Start on the same objects; nothing restored', () => {
      const t = taking('save-and-continue');
      expect(digests(t.during, 'pkt.save')).toHaveLength(8);
      expect(t.hostStates).toEqual(['Paused', 'Started', 'Active']);
      expect(t.during.filter((e) => e.ev === 'pkt.restore')).toEqual([]);
      // The same run with the choice left out is this one.
      const sink = new MemorySink();
      executeScenario(s, { seed: 1, sink });
      expect(sink.events).toEqual(t.events);
    });

    it('pulse: the save is restored at once onto new host objects', () => {
      const t = taking('pulse');
      expect(t.hostStates).toEqual(['Paused', 'Closed', 'Enabled', 'Opened', 'Started', 'Active']);
      expect(digests(t.during, 'pkt.restore')).toEqual(digests(t.during, 'pkt.save'));
    });

    it.each(['save-and-continue', 'pulse'] as const)('under %s, applying the checkpoint restores its blob onto new objects, and every property holds', (opt) => {
      const t = taking(opt);
      const apply = t.events.findIndex((e) => e.ev === 'vm.checkpoint.apply.begin');
      const applyEnd = t.events.findIndex((e) => e.ev === 'vm.checkpoint.apply.end');
      expect(digests(t.events.slice(apply, applyEnd), 'pkt.restore')).toEqual(digests(t.during, 'pkt.save'));
      const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
      for (const e of t.events) checker.onEvent(e);
      expect(checker.finish(null)).toEqual([]);
    });
  });

  it('property: a save, a migration or a checkpoint at any save point keeps exactly-once delivery', () => {
    const step = trafficStep({ guestCount: 12, hostCount: 30, maxSize: 3000, hold: 8 });
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 1 << 30 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom<InjectedOp>('save-restore', 'migrate', 'checkpoint', 'checkpoint-apply'),
        fc.integer({ min: 16, max: 600 }),
        fc.constantFrom('save-and-continue' as const, 'pulse' as const),
        (steps, pages, seed, where, op, saveBufferSize, runningCheckpoint) => {
          const input: ScenarioInput = { name: 'prop', saveBufferSize, channels: [{ id: 0, g2hPages: pages, h2gPages: pages }], steps, choices: { runningCheckpoint } };
          const s = toScenario(ScenarioSchema.parse(input));
          const base = check(s, seed);
          expect(base.violations).toEqual([]);
          const at = Math.min(base.r.steps, Math.floor(where * (base.r.steps + 1)));
          const { r, violations } = check(s, seed, { at, op });
          expect(r.injected).toBe(true);
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('ring dumps (--dump-rings)', () => {
  it('keeps every save: five saves give five numbered dumps, each of the rings as they were then', () => {
    const s = suite.find((x) => x.name === 'repeated-save-restore')!;
    const dumps: Array<{ label: string; ch: number; dir: string; bytes: Uint8Array }> = [];
    executeScenario(s, { seed: 3, sink: new MemorySink(), dumpRing: (label, ch, dir, bytes) => dumps.push({ label, ch, dir, bytes: bytes.slice() }) });
    const labels = [...new Set(dumps.map((d) => d.label))];
    expect(labels).toEqual(['001-save', '002-save', '003-save', '004-save', '005-save', '006-end']);
    // A file per (label, channel, direction): none is written twice.
    const files = dumps.map((d) => `${d.label}-ch${d.ch}-${d.dir}.ring`);
    expect(new Set(files).size).toBe(files.length);
    // The rings moved between saves: the dumps are not copies of one another.
    const h2g = dumps.filter((d) => d.dir === 'h2g').map((d) => Buffer.from(d.bytes).toString('hex'));
    expect(new Set(h2g).size).toBeGreaterThan(1);
  });
});
