// The fault modes prove the checker: across the scenario suite and several seeds, every
// run in which a fault acted is flagged with that fault's class, and every run in which
// it could not act (or no fault was on) is not flagged at all.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { StampingSink } from '../../src/trace/sink.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import { FAULT_CLASS, FAULT_MODES, type FaultMode } from '../../src/vmbus/faults.ts';
import { ScenarioSchema, toScenario } from '../../src/scenario/model.ts';
import { checkRules } from '../../src/scenario/validate.ts';
import { executeAcrossThreads } from '../../src/run/workers/migrate-threads.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const suite = await loadScenarioPaths(['bench/scenarios']);
const seeds = [1, 2, 3, 4];

function run(s: (typeof suite)[number], seed: number, faults: FaultMode[]) {
  const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  const r = executeScenario(s, { seed, sink: new StampingSink('emulator', (e) => c.onEvent(e)), faults });
  return { fired: r.faultsFired, classes: [...new Set(c.finish(r.hang, r.refusedRestores).map((v) => v.class))] };
}

describe('fault modes against the property checker', () => {
  it('flags no clean run', () => {
    for (const s of suite) for (const seed of seeds) expect(run(s, seed, []).classes, `${s.name} seed ${seed}`).toEqual([]);
  });

  it.each(FAULT_MODES.map((f) => [f]))('flags every run where %s acted, with its class', (fault) => {
    let firedRuns = 0;
    for (const s of suite) {
      for (const seed of seeds) {
        const { fired, classes } = run(s, seed, [fault]);
        const where = `${s.name} seed ${seed}`;
        if (fired.includes(fault)) {
          firedRuns++;
          expect(classes.some((c) => FAULT_CLASS[fault].includes(c)), `${where}: got ${classes.join(', ')}`).toBe(true);
        } else {
          expect(classes, `${where}: the fault did not act, so nothing may be flagged`).toEqual([]);
        }
      }
    }
    // Each fault has at least one scenario in the suite where it acts.
    expect(firedRuns).toBeGreaterThan(0);
  });
});

describe('wrong-status acts only where the guest reads the completion it changed', () => {
  // One request the VSP holds for 20 ms; 2 ms in, the channel goes away (`then`) with the
  // request still held, so the VSP completes it on an instance whose guest reads no more.
  const heldThen = (then: unknown[]) => toScenario(ScenarioSchema.parse({
    name: 'held-request-then',
    channels: 1,
    steps: [{ op: 'guest-send', count: 1, size: 64, mode: 'hold', hold: 20 }, { op: 'run', ms: 2 }, ...then],
  }));

  it.each([
    ['the host rescinds the channel', [{ op: 'rescind', channel: 0 }, { op: 'settle' }]],
    ['the guest closes the channel', [{ op: 'guest-close', channel: 0 }, { op: 'settle' }]],
    ['the guest closes and reopens the channel and sends again', [{ op: 'guest-close', channel: 0 }, { op: 'guest-open', channel: 0 }, { op: 'guest-send', count: 1, size: 64 }, { op: 'settle' }]],
  ])('%s: the changed completion is never read, so the fault did not act and nothing is flagged', (_n, then) => {
    for (const seed of seeds) {
      const r = run(heldThen(then), seed, ['wrong-status']);
      expect(r, `seed ${seed}`).toEqual({ fired: [], classes: [] });
    }
  });

  it('the same held request completed on an open channel: the fault acts and the checker names status', () => {
    for (const seed of seeds) {
      const r = run(heldThen([{ op: 'settle' }]), seed, ['wrong-status']);
      expect(r.fired, `seed ${seed}`).toEqual(['wrong-status']);
      expect(r.classes, `seed ${seed}`).toContain('status');
    }
  });
});

describe('wrong-status across a checkpoint: it acts only if the guest reads the changed completion', () => {
  // The guest's request is held 20 ms; the VM is paused from 2 ms, so the VSP writes the
  // changed completion at 20 ms and the guest, stopped, does not read it yet.
  const send = { op: 'guest-send', count: 1, size: 64, mode: 'hold', hold: 20 };
  const writtenUnread = [send, { op: 'run', ms: 2 }, { op: 'pause' }, { op: 'run', ms: 30 }];
  const scenario = (steps: unknown[]) => toScenario(ScenarioSchema.parse({ name: 'checkpoint-around-change', channels: 1, steps }));

  it('a checkpoint taken before the change is written, applied before the guest reads it: the change is rolled away, the fault did not act', () => {
    for (const seed of seeds) {
      const r = run(scenario([{ op: 'checkpoint', name: 'a' }, ...writtenUnread, { op: 'apply-checkpoint', name: 'a' }, { op: 'settle' }]), seed, ['wrong-status']);
      expect(r, `seed ${seed}`).toEqual({ fired: [], classes: [] });
    }
  });

  it('the same checkpoint applied after the guest read the change: the fault acted and the checker names status', () => {
    for (const seed of seeds) {
      const r = run(scenario([{ op: 'checkpoint', name: 'a' }, ...writtenUnread, { op: 'resume' }, { op: 'settle' }, { op: 'apply-checkpoint', name: 'a' }, { op: 'settle' }]), seed, ['wrong-status']);
      expect(r.fired, `seed ${seed}`).toEqual(['wrong-status']);
      expect(r.classes, `seed ${seed}`).toContain('status');
    }
  });

  it('a checkpoint taken while the change lay unread holds it: applied after an older one rolled it away, the guest reads it and the fault acted', () => {
    for (const seed of seeds) {
      // b is taken on resuming, before the guest runs: the change lies unread in it.
      const r = run(scenario([
        { op: 'checkpoint', name: 'a' }, ...writtenUnread, { op: 'resume' }, { op: 'checkpoint', name: 'b' }, { op: 'apply-checkpoint', name: 'a' }, { op: 'apply-checkpoint', name: 'b' }, { op: 'settle' },
      ]), seed, ['wrong-status']);
      expect(r.fired, `seed ${seed}`).toEqual(['wrong-status']);
      expect(r.classes, `seed ${seed}`).toContain('status');
    }
  });
});

describe('wrong-status across a migration to another thread', () => {
  it('the hand-off says where the change is: a checkpoint from before it, applied on the new thread, still rolls it away', async () => {
    const s = toScenario(ScenarioSchema.parse({
      name: 'change-handed-on', channels: 1,
      steps: [
        { op: 'checkpoint', name: 'a' }, { op: 'guest-send', count: 1, size: 64, mode: 'hold', hold: 20 }, { op: 'run', ms: 2 },
        { op: 'pause' }, { op: 'run', ms: 30 }, { op: 'resume' }, { op: 'migrate', to: 'far' }, { op: 'apply-checkpoint', name: 'a' }, { op: 'settle' },
      ],
    }));
    // (Two seeds: each run starts a thread.)
    for (const seed of seeds.slice(0, 2)) {
      const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
      const r = await executeAcrossThreads(s, { seed, sink: new StampingSink('emulator', (e) => c.onEvent(e)), faults: ['wrong-status'] });
      expect(r.threads.length, `seed ${seed}: the run moved thread`).toBe(2);
      expect({ fired: r.faultsFired, classes: c.finish(r.hang, r.refusedRestores).map((v) => v.class) }, `seed ${seed}`).toEqual({ fired: [], classes: [] });
      // The same as in one thread.
      expect(run(s, seed, ['wrong-status']), `seed ${seed}`).toEqual({ fired: [], classes: [] });
    }
  });
});

describe('wrong-status, property: wherever checkpoints are taken and applied, it acted exactly when the checker sees it', () => {
  // Held requests, time passing, pauses (the VSP writes while the guest is stopped),
  // checkpoints taken and applied, rescinds, in any order the rules allow. The
  // invariant of Faults.changedCompletion, seen from outside: the run says the fault
  // acted exactly when the guest read a changed completion, which the checker flags as
  // status; a run where it did not act is flagged with nothing.
  type Token =
    | { t: 'send'; hold: number } | { t: 'run'; ms: number } | { t: 'pause' }
    | { t: 'checkpoint'; name: 'a' | 'b' } | { t: 'apply'; name: 'a' | 'b' } | { t: 'rescind' };
  const token: fc.Arbitrary<Token> = fc.oneof(
    fc.record({ t: fc.constant('send' as const), hold: fc.integer({ min: 0, max: 25 }) }),
    fc.record({ t: fc.constant('run' as const), ms: fc.integer({ min: 1, max: 30 }) }),
    fc.constant({ t: 'pause' as const }),
    fc.record({ t: fc.constant('checkpoint' as const), name: fc.constantFrom('a' as const, 'b' as const) }),
    fc.record({ t: fc.constant('apply' as const), name: fc.constantFrom('a' as const, 'b' as const) }),
    fc.constant({ t: 'rescind' as const }),
  );
  /** The steps the tokens stand for, where the scenario rules allow them (pause toggles; a paused VM resumes before what needs it running). */
  function steps(tokens: Token[]): unknown[] {
    const out: unknown[] = [];
    let paused = false;
    const taken = new Set<string>();
    const running = () => { if (paused) out.push({ op: 'resume' }); paused = false; };
    for (const k of tokens) {
      switch (k.t) {
        case 'send': running(); out.push({ op: 'guest-send', count: 1, size: 64, mode: 'hold', hold: k.hold }); break;
        case 'run': out.push({ op: 'run', ms: k.ms }); break;
        case 'pause': out.push({ op: paused ? 'resume' : 'pause' }); paused = !paused; break;
        case 'checkpoint': running(); out.push({ op: 'checkpoint', name: k.name }); taken.add(k.name); break;
        case 'apply': if (taken.has(k.name)) { out.push({ op: 'apply-checkpoint', name: k.name }); paused = false; } break;
        case 'rescind': running(); out.push({ op: 'rescind', channel: 0 }); break;
      }
    }
    running();
    out.push({ op: 'settle' });
    return out;
  }

  it('holds for any order of sends, pauses, checkpoints, applies and rescinds', () => {
    const seen = { acted: 0, notActed: 0 };
    fc.assert(
      fc.property(fc.array(token, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 1000 }), (tokens, seed) => {
        const s = toScenario(ScenarioSchema.parse({ name: 'checkpoints-and-change', channels: 1, steps: steps(tokens) }));
        expect(checkRules(s)).toEqual([]);
        const r = run(s, seed, ['wrong-status']);
        if (r.fired.includes('wrong-status')) {
          seen.acted++;
          expect(r.classes).toContain('status');
        } else {
          seen.notActed++;
          expect(r.classes).toEqual([]);
        }
      }),
      { numRuns: 400 },
    );
    // Both outcomes were tried: a property that only ever saw one side would prove half.
    expect(seen.acted).toBeGreaterThan(0);
    expect(seen.notActed).toBeGreaterThan(0);
  });
});
