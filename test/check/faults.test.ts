// The fault modes prove the checker: across the scenario suite and several seeds, every
// run in which a fault acted is flagged with that fault's class, and every run in which
// it could not act (or no fault was on) is not flagged at all.
import { describe, expect, it } from 'vitest';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { StampingSink } from '../../src/trace/sink.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import { FAULT_CLASS, FAULT_MODES, type FaultMode } from '../../src/vmbus/faults.ts';
import { ScenarioSchema, toScenario } from '../../src/scenario/model.ts';

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
