// The loopback topology (execute.ts "Topology loopback", scenario/loopback.ts): the
// emulator runs exactly the scenarios the rule admits, refuses the rest with the step's
// place (exit 2), and what it runs keeps every packet exactly once with the client never
// frozen, through channel saves, restores, checkpoints and pauses.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PropertyChecker, statusRuleOf } from '../../src/check/properties.ts';
import { InputError } from '../../src/errors.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loopbackStepProblem } from '../../src/scenario/loopback.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../src/scenario/model.ts';
import { StampingSink } from '../../src/trace/sink.ts';
import { trafficStep } from './arbitraries.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const traffic = trafficStep({ guestCount: 4, hostCount: 4, maxSize: 300, hold: 4 });
// Blocks the scenario validator accepts in any order: traffic, a save and its restore, a
// checkpoint, a pause with what may happen in it and its resume, and the VM-only steps.
const block = fc.oneof(
  traffic.map((t) => [t]),
  fc.constant([{ op: 'save' as const }, { op: 'restore' as const }]),
  fc.constant([{ op: 'checkpoint' as const, name: 'c' }]),
  fc.array(traffic, { maxLength: 2 }).map((inside) => [{ op: 'pause' as const }, ...inside, { op: 'resume' as const }]),
  fc.constant([{ op: 'migrate' as const, to: 'host-b' }]),
  fc.constant([{ op: 'checkpoint' as const, name: 'd' }, { op: 'apply-checkpoint' as const, name: 'd' }]),
);

function run(s: Scenario, seed: number) {
  const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  const r = executeScenario(s, { seed, sink: new StampingSink('emulator', (e) => checker.onEvent(e)) });
  return { r, violations: checker.finish(r.hang, r.refusedRestores) };
}

describe('the loopback topology', () => {
  it('runs what the rule admits with no property broken, and refuses the rest with the step that cannot run', () => {
    fc.assert(
      fc.property(fc.array(block, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 1 << 30 }), (blocks, pages, seed) => {
        const steps = blocks.flat();
        const s: Scenario = { ...toScenario(ScenarioSchema.parse({ name: 'lb', channels: [{ id: 0, g2hPages: pages, h2gPages: pages }], steps })), topology: 'loopback' };
        const problem = loopbackStepProblem(s);
        if (problem) {
          const e = (() => { try { run(s, seed); } catch (x) { return x; } return undefined; })();
          expect(e).toBeInstanceOf(InputError);
          expect((e as InputError).location).toMatchObject({ field: `steps[${problem.step}].op` });
          return;
        }
        const { r, violations } = run(s, seed);
        expect(violations).toEqual([]);
        expect(r.hang).toBeNull();
      }),
      { numRuns: 120 },
    );
  });

  it('takes a checkpoint as the loopback lab does (save, then start the same server channels again) under either runningCheckpoint option', () => {
    const steps = [{ op: 'host-send', count: 4, size: 64, hold: 3 }, { op: 'run', ms: 1 }, { op: 'checkpoint', name: 'c' }, { op: 'settle' }];
    const trace = (runningCheckpoint: 'save-and-continue' | 'pulse') => {
      const events: Array<{ ev: string }> = [];
      executeScenario({ ...toScenario(ScenarioSchema.parse({ name: 'c', steps })), topology: 'loopback' }, { seed: 1, choices: { runningCheckpoint }, sink: new StampingSink('emulator', (e) => events.push(e)) });
      return events;
    };
    const pulse = trace('pulse');
    expect(pulse.filter((e) => e.ev === 'pkt.save').length).toBeGreaterThan(0);
    expect(pulse.filter((e) => e.ev === 'pkt.restore')).toEqual([]);
    // The bench's own channel commands, not Hyper-V: the choice has nothing to act on.
    expect(trace('save-and-continue')).toEqual(pulse);
  });

  it('lets the client complete what it holds while the server channels are paused, which a VM\'s guest cannot', () => {
    const steps = [
      { op: 'host-send', count: 2, size: 64, hold: 3 }, { op: 'run', ms: 1 },
      { op: 'pause' }, { op: 'run', ms: 10 }, { op: 'resume' }, { op: 'settle' },
    ];
    const between = (topology: 'vm' | 'loopback') => {
      const events: Array<{ side: string; ev: string }> = [];
      executeScenario({ ...toScenario(ScenarioSchema.parse({ name: 'p', steps })), topology }, { seed: 1, sink: new StampingSink('emulator', (e) => events.push(e)) });
      const at = (ev: string) => events.findIndex((e) => e.ev === ev);
      return events.slice(at('vm.pause'), at('vm.resume')).map((e) => `${e.side} ${e.ev}`);
    };
    expect(between('loopback')).toEqual(['bench vm.pause', 'host ch.state', 'guest pkt.complete', 'guest pkt.complete', 'host ch.state', 'host ch.state']);
    expect(between('vm')).toEqual(['bench vm.pause']);
  });
});
