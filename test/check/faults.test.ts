// The fault modes prove the checker: across the scenario suite and several seeds, every
// run in which a fault acted is flagged with that fault's class, and every run in which
// it could not act (or no fault was on) is not flagged at all.
import { describe, expect, it } from 'vitest';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { StampingSink } from '../../src/trace/sink.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import { FAULT_CLASS, FAULT_MODES, type FaultMode } from '../../src/vmbus/faults.ts';

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
