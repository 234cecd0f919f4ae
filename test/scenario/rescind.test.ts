// Rescind and re-offer on the emulator (issue 13 item 3): a rescind racing traffic, a
// restore a VSP refuses (which falls back to a rescind and a new offer instead of ending
// the run), and FORCE_NEW_CHANNEL. Each run must keep every property, with what was in
// flight on the old instance ended once at its sender and never received on the new one.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { executeScenario } from '../../src/scenario/execute.ts';
import type { ScenarioInput } from '../../src/scenario/model.ts';
import { checkRules } from '../../src/scenario/validate.ts';
import { MemorySink, StampingSink } from '../../src/trace/sink.ts';
import { PropertyChecker } from '../../src/check/properties.ts';
import { checkTrace } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { InputError } from '../../src/errors.ts';
import { trafficStep } from './arbitraries.ts';
import { at, pkts, run, SAMPLE_STATUS_RULE, scenarioNamed, type Pkt } from './checked-run.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const scenario = scenarioNamed('rescind-test');

const racing = scenario({
  channels: 2,
  steps: [
    { op: 'guest-send', channel: 0, count: 6, size: 256, mode: 'hold', hold: 20 },
    { op: 'host-send', channel: 0, count: 6, size: 256, hold: 30 },
    { op: 'guest-send', channel: 1, count: 4, size: 64 },
    { op: 'run', ms: 3 },
    { op: 'rescind', channel: 0 },
    { op: 'guest-send', channel: 0, count: 4, size: 64, mode: 'hold', hold: 5 },
    { op: 'host-send', channel: 0, count: 4, size: 64, hold: 5 },
    { op: 'settle' },
  ],
});

describe('a rescind racing traffic', () => {
  const { events, violations, hang } = run(racing);

  it('keeps every property and finishes', () => {
    expect(hang).toBeNull();
    expect(violations).toEqual([]);
  });

  it('ends each of the old instance\'s requests once at the guest, with STATUS_CANCELLED, after the rescind', () => {
    const rescind = at(events, (e) => e.ev === 'ch.rescind');
    const offer = at(events, (e) => e.ev === 'ch.offer');
    expect(rescind).toBeGreaterThan(0);
    expect(offer).toBeGreaterThan(rescind);
    const cancels = pkts(events, 'pkt.cancel', 'guest');
    // Every guest request sent before the rescind and not completed by then is cancelled, once.
    const completedBefore = new Set(pkts(events.slice(0, rescind), 'pkt.completion', 'guest').filter((e) => e.ch === 0).map((e) => e.tx));
    const inFlight = pkts(events.slice(0, rescind), 'pkt.send', 'guest').filter((e) => e.ch === 0 && !completedBefore.has(e.tx)).map((e) => e.tx);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(cancels.map((e) => e.tx)).toEqual(inFlight);
    for (const c of cancels) {
      expect((c as unknown as { status: string }).status).toBe('c0000120');
      const i = events.indexOf(c);
      expect(i).toBeGreaterThan(rescind);
      expect(i).toBeLessThan(offer);
    }
  });

  it('ends the host transactions the guest had not completed with KMCL\'s cancel, and none of them completes', () => {
    const cancelled = pkts(events, 'pkt.cancel', 'host').map((e) => e.tx);
    expect(cancelled.length).toBeGreaterThan(0);
    const completions = pkts(events, 'pkt.completion', 'host').filter((e) => e.ch === 0).map((e) => e.tx);
    for (const tx of cancelled) expect(completions).not.toContain(tx);
  });

  it('never receives an old instance\'s packet on the new one, and the new one carries new ids to the end', () => {
    const offer = at(events, (e) => e.ev === 'ch.offer');
    const sentBefore = new Set(pkts(events.slice(0, offer), 'pkt.send').filter((e) => e.ch === 0).map((e) => `${e.dir}/${e.tx}`));
    const recvAfter = pkts(events.slice(offer), 'pkt.recv').filter((e) => e.ch === 0);
    for (const r of recvAfter) expect(sentBefore.has(`${r.dir}/${r.tx}`), `${r.dir}/${r.tx}`).toBe(false);
    // The requests sent on the new instance all complete.
    const newRequests = pkts(events.slice(offer), 'pkt.send', 'guest').filter((e) => e.ch === 0).map((e) => e.tx);
    expect(newRequests).toEqual([7, 8, 9, 10]);
    const done = pkts(events, 'pkt.completion', 'guest').filter((e) => e.ch === 0).map((e) => e.tx);
    expect(done).toEqual(expect.arrayContaining(newRequests));
  });

  it('closes and reopens both ends in KMCL order (host: a new object after the offer)', () => {
    const states = (side: string) => (events.filter((e) => e.ev === 'ch.state' && e.side === side && e.ch === 0) as Array<{ state: string }>).map((e) => e.state);
    expect(states('guest')).toEqual(['Opened', 'Active', 'Closed', 'Opened', 'Active']);
    expect(states('host')).toEqual(['Enabled', 'Opened', 'Started', 'Active', 'Paused', 'Closed', 'Enabled', 'Opened', 'Started', 'Active']);
  });

  it('leaves the other channel alone', () => {
    expect(events.some((e) => (e.ev === 'ch.rescind' || e.ev === 'pkt.cancel') && (e as Pkt).ch === 1)).toBe(false);
  });

  it('is explained event for event by the replay (bench check)', () => {
    const source = new ArraySource(events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
    expect(checkTrace(racing, source).verdict).toBe('pass');
  });

  it('diverges when a guest cancel is missing (lost)', () => {
    const i = at(events, (e) => e.ev === 'pkt.cancel' && e.side === 'guest');
    const broken = events.filter((_, j) => j !== i);
    const r = checkTrace(racing, new ArraySource(broken.map((event, k) => ({ event, file: 't.jsonl', line: k + 1 }))));
    expect(r.verdict).toBe('diverge');
    if (r.verdict === 'diverge') expect(r.class).toBe('lost');
  });
});

describe('rescind at any point of random traffic (property)', () => {
  it('every property holds and the run finishes, whatever was in flight', () => {
    const limits = { guestCount: 6, hostCount: 6, maxSize: 600, hold: 8 };
    fc.assert(
      fc.property(
        fc.array(trafficStep(limits), { minLength: 1, maxLength: 6 }),
        fc.array(trafficStep(limits), { minLength: 0, maxLength: 4 }),
        fc.integer({ min: 0, max: 1 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom('reopen', 'then-restore-fails', 'offered-through-a-save'),
        (before, after, ch, seed, variant) => {
          const withCh = (steps: typeof before) => steps.map((s) => ('count' in s ? { ...s, channel: ch } : s));
          const hostOnly = (steps: typeof before) => withCh(steps).filter((s) => s.op === 'host-send' || s.op === 'run' || (s.op === 'notify' && s.dir === 'h2g'));
          const middle: ScenarioInput['steps'] =
            variant === 'reopen' ? [{ op: 'rescind', channel: ch }, ...withCh(after)]
            : variant === 'then-restore-fails' ? [{ op: 'rescind', channel: ch }, { op: 'save' }, { op: 'restore', fail: [ch] }, ...withCh(after)]
            // offered and not opened: only the host sends until the guest opens it
            : [{ op: 'rescind', channel: ch, reopen: false }, ...hostOnly(after), { op: 'save' }, { op: 'restore' }, { op: 'guest-open', channel: ch }];
          const s = scenario({ channels: 2, steps: [...withCh(before), ...middle, { op: 'settle' }] });
          const { violations, hang } = run(s, seed);
          expect(hang).toBeNull();
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });
});

const restoreFails = scenario({
  channels: 2,
  steps: [
    { op: 'host-send', channel: 0, count: 4, size: 200, hold: 50 },
    { op: 'host-send', channel: 1, count: 8, size: 200, hold: 50 },
    { op: 'guest-send', channel: 1, count: 4, size: 100, mode: 'hold', hold: 40 },
    { op: 'run', ms: 5 },
    { op: 'save' },
    { op: 'restore', fail: [1] },
    { op: 'guest-send', channel: 1, count: 4, size: 64 },
    { op: 'host-send', channel: 1, count: 4, size: 64, hold: 5 },
    { op: 'settle' },
  ],
});

describe('a restore that fails', () => {
  const { events, violations, hang } = run(restoreFails);
  const begin = at(events, (e) => e.ev === 'vm.restore.begin');
  const end = at(events, (e) => e.ev === 'vm.restore.end');

  it('falls back to a rescind and a new offer inside the restore, and the run goes on', () => {
    expect(hang).toBeNull();
    expect(violations).toEqual([]);
    const rescind = at(events, (e) => e.ev === 'ch.rescind');
    const offer = at(events, (e) => e.ev === 'ch.offer');
    expect((events[rescind] as Pkt).ch).toBe(1);
    expect(begin < rescind && rescind < offer && offer < end).toBe(true);
  });

  it('cancels the transaction its VSP had restored before it gave up, and restores the other channel', () => {
    const window = events.slice(begin, end);
    const restored1 = pkts(window, 'pkt.restore').filter((e) => e.ch === 1).map((e) => e.tx);
    expect(restored1).toEqual([1]);
    expect(pkts(window, 'pkt.cancel', 'host').map((e) => `${e.ch}/${e.tx}`)).toEqual(['1/1']);
    expect(pkts(window, 'pkt.restore').filter((e) => e.ch === 0).map((e) => e.tx)).toEqual([1, 2, 3, 4]);
  });

  it('without the fallback the checker would call the unrestored transactions not-restored', () => {
    // The same trace with the rescind taken out: the saved transactions 2..8 of channel 1
    // were neither restored nor ended by a rescind.
    const cut = events.filter((e) => e.ev !== 'ch.rescind' && e.ev !== 'ch.offer');
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of cut) c.onEvent(e);
    expect(c.finish(null).map((v) => v.class)).toContain('not-restored');
  });

  it('is explained by the replay', () => {
    const source = new ArraySource(events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
    expect(checkTrace(restoreFails, source).verdict).toBe('pass');
  });
});

describe('FORCE_NEW_CHANNEL', () => {
  const s = scenario({
    channels: [{ id: 0 }, { id: 1, forceNewChannel: true }],
    steps: [
      { op: 'host-send', channel: 0, count: 4, size: 200, hold: 50 },
      { op: 'host-send', channel: 1, count: 4, size: 200, hold: 50 },
      { op: 'guest-send', channel: 1, count: 3, size: 100, mode: 'hold', hold: 40 },
      { op: 'run', ms: 5 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'host-send', channel: 1, count: 2, size: 64, hold: 5 },
      { op: 'migrate', to: 'host-b' },
      { op: 'checkpoint', name: 'c1' },
      { op: 'host-send', channel: 1, count: 2, size: 64, hold: 5 },
      { op: 'apply-checkpoint', name: 'c1' },
      { op: 'settle' },
    ],
  });
  const { events, violations, hang } = run(s);

  it('offers the flagged channel anew after every restore and abandons its saved state; the other carries on', () => {
    expect(hang).toBeNull();
    expect(violations).toEqual([]);
    const rescinds = pkts(events, 'ch.rescind');
    // restore, migration and checkpoint apply (a checkpoint goes on from its save on the
    // same objects, runningCheckpoint save-and-continue: nothing is restored, nothing offered)
    expect(rescinds.map((e) => e.ch)).toEqual([1, 1, 1]);
    expect(pkts(events, 'pkt.restore').filter((e) => e.ch === 1)).toEqual([]);
    expect(pkts(events, 'pkt.restore').filter((e) => e.ch === 0).length).toBeGreaterThan(0);
    expect(pkts(events, 'ch.rescind').some((e) => e.ch === 0)).toBe(false);
  });

  it('under runningCheckpoint pulse, the checkpoint\'s own restore offers it anew too', () => {
    const pulse = { ...s, choices: { runningCheckpoint: 'pulse' } };
    const r = run(pulse);
    expect(r.violations).toEqual([]);
    expect(pkts(r.events, 'ch.rescind').map((e) => e.ch)).toEqual([1, 1, 1, 1]);
    const source = new ArraySource(r.events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
    expect(checkTrace(pulse, source).verdict).toBe('pass');
  });

  it('sets the KMCL flag on the server channel (0x8), and only there', () => {
    const sink = new StampingSink('emulator', () => {});
    let flags: number[] = [];
    executeScenario(s, {
      seed: 1,
      sink,
      atSavePoint: (_n, sp) => {
        flags = [...sp.live.host!.vsps.values()].map((v) => v.channel.config.serverFlags);
        return 'stop';
      },
    });
    expect(flags).toEqual([0, 8]);
  });

  it('is explained by the replay', () => {
    const source = new ArraySource(events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
    expect(checkTrace(s, source).verdict).toBe('pass');
  });
});

describe('a save of a channel offered and not opened (rescind with reopen: false)', () => {
  const s = scenario({
    channels: 2,
    steps: [
      { op: 'host-send', channel: 1, count: 4, size: 200, hold: 20 },
      { op: 'rescind', channel: 1, reopen: false },
      { op: 'host-send', channel: 1, count: 5, size: 200, hold: 5 },
      { op: 'host-send', channel: 0, count: 3, size: 200, hold: 30 },
      { op: 'run', ms: 2 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'migrate', to: 'host-b' },
      { op: 'guest-open', channel: 1 },
      { op: 'settle' },
    ],
  });

  it('queues the host\'s sends in KMCL, saves and restores them, and delivers each once after the guest opens the channel', () => {
    for (const runningCheckpoint of ['save-and-continue', 'pulse'] as const) {
      const withCheckpoint = { ...s, choices: { runningCheckpoint }, steps: [...s.steps.slice(0, 5), { op: 'checkpoint' as const, name: 'c' }, ...s.steps.slice(5)] };
      const { events, violations, hang } = run(withCheckpoint);
      expect(hang).toBeNull();
      expect(violations).toEqual([]);
      const open = events.findLastIndex((e) => e.ev === 'ch.state' && e.side === 'guest' && (e as Pkt).ch === 1 && (e as unknown as { state: string }).state === 'Opened');
      const restoreEnd = at(events, (e) => e.ev === 'vm.restore.end');
      expect(open).toBeGreaterThan(restoreEnd);
      const saveBegin = at(events, (e) => e.ev === 'vm.save.begin');
      expect(pkts(events.slice(saveBegin, restoreEnd), 'pkt.save').filter((e) => e.ch === 1).map((e) => e.tx)).toEqual([5, 6, 7, 8, 9]);
      expect(pkts(events.slice(saveBegin, restoreEnd), 'pkt.restore').filter((e) => e.ch === 1).map((e) => e.tx)).toEqual([5, 6, 7, 8, 9]);
      // Nothing of channel 1 reaches the guest before it opens the channel; all of it after.
      expect(pkts(events.slice(0, open), 'pkt.recv', 'guest').filter((e) => e.ch === 1 && e.tx >= 5)).toEqual([]);
      expect(pkts(events.slice(open), 'pkt.recv', 'guest').filter((e) => e.ch === 1).map((e) => e.tx)).toEqual([5, 6, 7, 8, 9]);
      const source = new ArraySource(events.map((event, i) => ({ event, file: 't.jsonl', line: i + 1 })));
      expect(checkTrace(withCheckpoint, source).verdict).toBe('pass');
    }
  });

  it('keeps the channel closed in the guest\'s saved state: the restored host offers it and does not open it', () => {
    const { events } = run(s);
    const begin = at(events, (e) => e.ev === 'vm.restore.begin');
    const end = at(events, (e) => e.ev === 'vm.restore.end');
    const states = (events.slice(begin, end).filter((e) => e.ev === 'ch.state' && (e as Pkt).ch === 1) as unknown as Array<{ state: string }>).map((e) => e.state);
    expect(states).toEqual(['Enabled']);
  });
});

describe('scenario rules', () => {
  it('guest-open only after a rescind with reopen: false; no guest send on a closed channel; not left closed at the end', () => {
    const bad = scenario({
      channels: 1,
      steps: [{ op: 'guest-open' }, { op: 'rescind', reopen: false }, { op: 'guest-send', count: 1, size: 64 }, { op: 'rescind' }],
    });
    const v = checkRules(bad).map((x) => `${x.field}: ${x.message}`);
    expect(v).toEqual([
      'steps[0].channel: channel 0 is open; "guest-open" follows a "guest-close" or a "rescind" with "reopen: false"',
      'steps[2].channel: the guest has channel 0 closed; "guest-open" it first',
      'steps[3].channel: channel 0 is closed already; "guest-open" it first',
      'steps[3]: the scenario ends with channel 0 offered and not opened; add a "guest-open"',
    ]);
  });

  it('refuses a rescind of a saved VM, and a failing restore of a channel that does not exist', () => {
    const bad = scenario({ channels: 1, steps: [{ op: 'save' }, { op: 'rescind' }, { op: 'restore', fail: [3] }] });
    const v = checkRules(bad).map((x) => `${x.field}: ${x.message}`);
    expect(v).toContain('steps[1].op: the VM is saved here; only "restore" can follow "save", not "rescind"');
    expect(v).toContain('steps[2].fail[0]: no channel 3; channels are 0');
  });

  it.skipIf(!toolchain)('devices: c runs a rescind, a failing restore and FORCE_NEW_CHANNEL on the C VSP, every property holding', () => {
    for (const s of [
      scenario({ devices: 'c', steps: [{ op: 'host-send', count: 3, size: 64, hold: 20 }, { op: 'rescind' }, { op: 'settle' }] }),
      scenario({ devices: 'c', steps: [{ op: 'host-send', count: 3, size: 64, hold: 20 }, { op: 'save' }, { op: 'restore', fail: [0] }, { op: 'settle' }] }),
      scenario({ devices: 'c', channels: [{ id: 0, forceNewChannel: true }], steps: [{ op: 'host-send', count: 2, size: 64, hold: 20 }, { op: 'save' }, { op: 'restore' }, { op: 'settle' }] }),
    ]) {
      const r = run(s);
      expect(r.hang).toBeNull();
      expect(r.violations).toEqual([]);
      expect(pkts(r.events, 'ch.rescind').length).toBe(1);
    }
  });
});
