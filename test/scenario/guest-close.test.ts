// A guest's close of a channel on the emulator (issue 13 item 3, "a save of a channel that
// is closing"): the scenario op guest-close, the VSP retiring what it had outstanding, a
// save, restore or checkpoint of the VM while the channel is closed, and guest-open after.
// Each run must keep every property, with what was in flight at the close ended once at its
// sender and never received after.
import { resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { executeScenario } from '../../src/scenario/execute.ts';
import type { ScenarioInput } from '../../src/scenario/model.ts';
import { checkRules } from '../../src/scenario/validate.ts';
import { loopbackStepProblem } from '../../src/scenario/loopback.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { PropertyChecker } from '../../src/check/properties.ts';
import { checkTrace } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { InputError } from '../../src/errors.ts';
import { loadDevice } from '../../src/device-api/load.ts';
import { trafficStep } from './arbitraries.ts';
import { at, pkts, run, SAMPLE_STATUS_RULE, scenarioNamed, type Pkt } from './checked-run.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const scenario = scenarioNamed('guest-close-test');
const guestClosed = (e: TraceEvent): boolean => e.ev === 'ch.state' && e.side === 'guest' && (e as Pkt).state === 'Closed';

const closing = scenario({
  channels: 2,
  steps: [
    { op: 'guest-send', channel: 0, count: 6, size: 256, mode: 'hold', hold: 20 },
    { op: 'host-send', channel: 0, count: 6, size: 256, hold: 30 },
    { op: 'guest-send', channel: 1, count: 4, size: 64 },
    { op: 'run', ms: 3 },
    { op: 'guest-close', channel: 0 },
    // Sent to a closed channel: KMCL keeps it, the save saves it, the guest gets it once open.
    { op: 'host-send', channel: 0, count: 3, size: 64 },
    { op: 'save' },
    { op: 'restore' },
    { op: 'checkpoint', name: 'closed' },
    { op: 'guest-open', channel: 0 },
    { op: 'guest-send', channel: 0, count: 4, size: 64, mode: 'hold', hold: 5 },
    { op: 'settle' },
    { op: 'apply-checkpoint', name: 'closed' },
    { op: 'guest-open', channel: 0 },
    { op: 'settle' },
  ],
});

describe('a guest close with traffic in flight, then a save, a restore and a checkpoint while closed', () => {
  const { events, violations, hang } = run(closing);
  const close = at(events, guestClosed);
  const firstSave = at(events, (e) => e.ev === 'vm.save.begin');

  it('keeps every property and finishes', () => {
    expect(hang).toBeNull();
    expect(violations).toEqual([]);
  });

  it('closes the host channel before the guest, and rescinds nothing', () => {
    const hostClosed = at(events, (e) => e.ev === 'ch.state' && e.side === 'host' && (e as Pkt).ch === 0 && (e as Pkt).state === 'Closed');
    expect(hostClosed).toBeGreaterThan(0);
    expect(close).toBeGreaterThan(hostClosed);
    expect(events.some((e) => e.ev === 'ch.rescind' || e.ev === 'ch.offer')).toBe(false);
  });

  it('ends each request in flight at the close once at the guest, and each host transaction once at the VSP', () => {
    const before = events.slice(0, close);
    const completed = (side: string) => new Set(pkts(before, 'pkt.completion', side).filter((e) => e.ch === 0).map((e) => e.tx));
    const guestDone = completed('guest');
    const hostDone = completed('host');
    const guestInFlight = pkts(before, 'pkt.send', 'guest').filter((e) => e.ch === 0 && !guestDone.has(e.tx)).map((e) => e.tx);
    const hostInFlight = pkts(before, 'pkt.send', 'host').filter((e) => e.ch === 0 && !hostDone.has(e.tx)).map((e) => e.tx);
    expect(guestInFlight.length + hostInFlight.length).toBeGreaterThan(0);
    const window = events.slice(close, firstSave);
    expect(pkts(window, 'pkt.cancel', 'guest').map((e) => e.tx)).toEqual(guestInFlight);
    expect(pkts(window, 'pkt.cancel', 'host').map((e) => e.tx)).toEqual(hostInFlight);
    // Never received after the close.
    const after = events.slice(close);
    for (const tx of hostInFlight) expect(pkts(after, 'pkt.recv', 'guest').some((e) => e.ch === 0 && e.tx === tx)).toBe(false);
  });

  it('saves what was sent to the closed channel and delivers it once the guest opens it again', () => {
    const sentClosed = pkts(events.slice(close, firstSave), 'pkt.send', 'host').filter((e) => e.ch === 0).map((e) => e.tx);
    expect(sentClosed).toHaveLength(3);
    const saved = pkts(events.slice(firstSave), 'pkt.save').filter((e) => e.ch === 0).map((e) => e.tx);
    for (const tx of sentClosed) expect(saved).toContain(tx);
    const open = at(events, (e) => e.ev === 'ch.state' && e.side === 'guest' && (e as Pkt).ch === 0 && (e as Pkt).state === 'Opened');
    for (const tx of sentClosed) {
      const recv = at(events, (e) => e.ev === 'pkt.recv' && e.side === 'guest' && (e as Pkt).ch === 0 && (e as Pkt).tx === tx);
      expect(recv).toBeGreaterThan(open);
    }
  });

  it('leaves the other channel alone', () => {
    expect(events.some((e) => e.ev === 'pkt.cancel' && (e as Pkt).ch === 1)).toBe(false);
  });

  it('is explained event for event by the replay (bench check)', () => {
    const source = new ArraySource(events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
    const r = checkTrace(closing, source);
    expect(r.verdict === 'pass' ? 'pass' : JSON.stringify(r).slice(0, 1500)).toBe('pass');
  });

  it('the checker calls a host transaction lost when the VSP does not retire it', () => {
    const i = at(events, (e) => e.ev === 'pkt.cancel' && e.side === 'host');
    expect(i).toBeGreaterThan(0);
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of events.filter((_, j) => j !== i)) c.onEvent(e);
    expect(c.finish(null).map((v) => v.class)).toContain('lost');
  });
});

describe('a guest close at any point of random traffic, saved while closed (property)', () => {
  it('every property holds and the run finishes', () => {
    const limits = { guestCount: 6, hostCount: 6, maxSize: 600, hold: 8 };
    fc.assert(
      fc.property(
        fc.array(trafficStep(limits), { minLength: 1, maxLength: 6 }),
        fc.array(trafficStep(limits), { minLength: 0, maxLength: 4 }),
        fc.integer({ min: 0, max: 1 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom('save', 'checkpoint', 'checkpoint-applied', 'migrate'),
        (before, after, ch, seed, how) => {
          const withCh = (steps: typeof before) => steps.map((s) => ('count' in s ? { ...s, channel: ch } : s));
          const hostOnly = withCh(after).filter((s) => s.op === 'host-send' || s.op === 'run' || (s.op === 'notify' && s.dir === 'h2g'));
          const vmOp: ScenarioInput['steps'] =
            how === 'save' ? [{ op: 'save' }, { op: 'restore' }]
            : how === 'checkpoint' ? [{ op: 'checkpoint', name: 'c' }]
            : how === 'migrate' ? [{ op: 'migrate', to: 'other' }]
            : [{ op: 'checkpoint', name: 'c' }, ...hostOnly, { op: 'apply-checkpoint', name: 'c' }];
          const s = scenario({
            channels: 2,
            steps: [...withCh(before), { op: 'guest-close', channel: ch }, ...hostOnly, ...vmOp, { op: 'guest-open', channel: ch }, ...withCh(after), { op: 'settle' }],
          });
          const { violations, hang } = run(s, seed);
          expect(hang).toBeNull();
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('guest-close refused where it cannot run', () => {
  it('the rules: a closed channel is opened before the guest sends on it, closed once, and open at the end', () => {
    const msgs = (steps: ScenarioInput['steps']) => checkRules(scenario({ channels: 1, steps })).map((v) => `${v.field}: ${v.message}`);
    expect(msgs([{ op: 'guest-close', channel: 0 }, { op: 'guest-send', channel: 0, count: 1, size: 64 }, { op: 'guest-open', channel: 0 }]))
      .toEqual(['steps[1].channel: the guest has channel 0 closed; "guest-open" it first']);
    expect(msgs([{ op: 'guest-close', channel: 0 }, { op: 'guest-close', channel: 0 }, { op: 'guest-open', channel: 0 }]))
      .toEqual(['steps[1].channel: channel 0 is closed already; "guest-open" it first']);
    expect(msgs([{ op: 'guest-close', channel: 0 }])).toEqual(['steps[0]: the scenario ends with channel 0 offered and not opened; add a "guest-open"']);
    expect(msgs([{ op: 'pause' }, { op: 'guest-close', channel: 0 }, { op: 'resume' }, { op: 'guest-open', channel: 0 }]))
      .toEqual(['steps[1].op: a paused guest cannot close a channel']);
    expect(msgs([{ op: 'guest-close', channel: 0 }, { op: 'guest-open', channel: 0 }])).toEqual([]);
  });

  const closeAndOpen: ScenarioInput['steps'] = [{ op: 'host-send', count: 2, size: 64 }, { op: 'guest-close', channel: 0 }, { op: 'guest-open', channel: 0 }];

  it('loopback topology: exit 2 at the step', () => {
    const s = scenario({ topology: 'loopback', steps: closeAndOpen });
    expect(loopbackStepProblem(s)?.step).toBe(1);
    try {
      executeScenario(s, { seed: 1, sink: new MemorySink() });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).exitCode).toBe(2);
      expect((e as InputError).message).toMatch(/step 2: "guest-close"/);
      expect((e as InputError).location.field).toBe('steps[1].op');
    }
  });

  it('a device whose twins cannot close (test/fixtures/devices/no-close.ts): exit 2 at the step', async () => {
    await loadDevice(resolve('test/fixtures/devices/no-close.ts'));
    const s = scenario({ device: resolve('test/fixtures/devices/no-close.ts'), steps: [{ op: 'guest-close', channel: 0 }, { op: 'guest-open', channel: 0 }] });
    try {
      executeScenario(s, { seed: 1, sink: new MemorySink() });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).message).toMatch(/closed by its guest/);
      expect((e as InputError).location.field).toBe('steps[0].op');
    }
  });

  it.skipIf(!toolchain)('devices: c runs it on the C VSP (no longer refused), every property holding', () => {
    const r = run(scenario({ devices: 'c', steps: [...closeAndOpen, { op: 'settle' }] }));
    expect(r.hang).toBeNull();
    expect(r.violations).toEqual([]);
    expect(pkts(r.events, 'ch.state', 'host').filter((e) => e.state === 'Closed').length).toBe(1);
  });
});
