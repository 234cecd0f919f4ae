// `devices: c-windows`: a scenario runs with the sample's C VSP on the hosts and its C
// Windows guest driver (KMDF + KMCL client, both compiled to WebAssembly) as the VM's
// guest, each driven through its own control interface. Saves, checkpoints and
// migrations carry the guest as guest memory; every property holds and the model
// explains the trace; what the one-channel driver cannot run is refused as bad input.
// (The CLI test runs the bench scenarios on seeds 1-3; test/devices/wasm/c-vs-twin.test.ts
// holds the C guest's events to the twin guest's.)

import { describe, expect, it } from 'vitest';
import { checkTrace } from '../../src/check/replay.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import type { Scenario } from '../../src/scenario/model.ts';
import { assertCheckpointApplyPutsGuestBack, assertFirstTxAndLoopbackRefused, assertRefused, runOn, scenarioOn, sourceOf, toolchain } from './c-guest-run.ts';

const run = (s: Scenario, seed = 1) => runOn('c-windows', s, seed);
const source = (events: readonly TraceEvent[]) => sourceOf('c-windows', events);
const scenario = scenarioOn('c-windows');
const guestStates = (events: readonly TraceEvent[]) => events.filter((e) => e.side === 'guest' && e.ev === 'ch.state').map((e) => `${(e as { ch: number }).ch}:${(e as { state: string }).state}`);

describe.skipIf(!toolchain)('devices: c-windows', () => {
  it('a channel other than 0: the client traces its Enable on the channel it is bound to, and the model explains the run across save, migration and checkpoint apply', () => {
    // The driver used to trace Enabled before an offer had told it its channel number (on channel 0, whatever the channel).
    const s = scenario([
      { op: 'guest-send', channel: 3, count: 4, size: 96, mode: 'hold', hold: 3 },
      { op: 'host-send', channel: 3, count: 4, size: 96, hold: 6 },
      { op: 'run', ms: 1 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'migrate', to: 'b' },
      { op: 'checkpoint', name: 'cp' },
      { op: 'guest-send', channel: 3, count: 2, size: 64 },
      { op: 'settle' },
      { op: 'apply-checkpoint', name: 'cp' },
      { op: 'settle' },
    ], { channels: [{ id: 3 }] });
    for (const seed of [1, 2, 3]) {
      const c = run(s, seed);
      expect(c.result.hang).toBeNull();
      expect(c.violations).toEqual([]);
      expect(guestStates(c.events)).toEqual(['3:Enabled', '3:Opened', '3:Started', '3:Active']);
      expect(checkTrace(s, source(c.events)), `seed ${seed}`).toMatchObject({ verdict: 'pass' });
    }
  });

  it('a checkpoint applied puts the guest driver back as it was: what it held then completes once, its later sends are not remembered', () => {
    assertCheckpointApplyPutsGuestBack('c-windows');
  });

  it('a guest send that fills its ring: KMCL queues the rest in the library, and every Request completes', () => {
    const s = scenario([{ op: 'guest-send', count: 60, size: 256, mode: 'deferred' }, { op: 'save' }, { op: 'restore' }, { op: 'settle' }], { channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }] });
    const c = run(s);
    expect(c.violations).toEqual([]);
    expect(c.events.filter((e) => e.side === 'guest' && e.ev === 'pkt.completion')).toHaveLength(60);
    expect(c.events.some((e) => e.ev === 'pkt.queued')).toBe(false);
    expect(checkTrace(s, source(c.events))).toMatchObject({ verdict: 'pass' });
  });
});

describe.skipIf(!toolchain)('devices: c-windows, what the one-channel driver cannot run (exit 2)', () => {
  const refused = (s: Scenario, message: RegExp, field: string) => assertRefused('c-windows', s, message, field);

  it('more than one channel: one device per offer, one control device name per VM', () => {
    refused(scenario([{ op: 'guest-send', count: 1, size: 64 }], { channels: 2 }), /serves one channel per VM .* this scenario has 2/, 'channels');
  });

  it('a rescind, a guest close, forceNewChannel: the removed device and the new one are not modelled yet', () => {
    refused(scenario([{ op: 'guest-send', count: 1, size: 64 }, { op: 'rescind', channel: 0 }]), /does not run step 2 \(rescind\)/, 'steps[1].op');
    refused(scenario([{ op: 'guest-close', channel: 0 }]), /does not run step 1 \(guest-close\)/, 'steps[0].op');
    refused(scenario([{ op: 'save' }, { op: 'restore' }], { channels: [{ id: 0, forceNewChannel: true }] }), /does not run a re-offer/, 'channels[0].forceNewChannel');
  });

  it('a first tx other than 1, a loopback job', () => {
    assertFirstTxAndLoopbackRefused('c-windows');
  });
});
