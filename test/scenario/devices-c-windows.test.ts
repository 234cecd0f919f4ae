// `devices: c-windows`: a scenario runs with the sample's C VSP on the hosts and its C
// Windows guest driver (KMDF + KMCL client, both compiled to WebAssembly) as the VM's
// guest, each driven through its own control interface. Saves, checkpoints and
// migrations carry the guest as guest memory; every property holds and the model
// explains the trace, with several channels (one PnP device each), rescinds, guest closes and
// re-offers; a step that leaves every channel closed is refused as bad input. The test-only
// removal race (cGuestRemovalRace) leaves a correct driver's run as it is.
// (The CLI test runs the bench scenarios on seeds 1-3; test/devices/wasm/c-vs-twin.test.ts
// holds the C guest's events to the twin guest's.)

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { trafficStep } from './arbitraries.ts';
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

describe.skipIf(!toolchain)('devices: c-windows, several channels and their devices\' removal', () => {
  it('a guest close and open of one channel among three, across a save while it is closed, and a channel with forceNewChannel: each a device removed and a new one added; every property holds and the model explains the run', () => {
    const s = scenario([
      { op: 'guest-send', channel: 1, count: 3, size: 96, mode: 'hold', hold: 40 },
      { op: 'host-send', channel: 1, count: 2, size: 96, hold: 40 },
      { op: 'guest-send', channel: 0, count: 2, size: 64 },
      { op: 'run', ms: 2 },
      { op: 'guest-close', channel: 1 },
      { op: 'host-send', channel: 2, count: 2, size: 64, hold: 3 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'guest-open', channel: 1 },
      { op: 'guest-send', channel: 1, count: 1, size: 64 },
      { op: 'settle' },
    ], { channels: [{ id: 0 }, { id: 1 }, { id: 2, forceNewChannel: true }] });
    for (const seed of [1, 2]) {
      const c = run(s, seed);
      expect(c.result.hang).toBeNull();
      expect(c.violations).toEqual([]);
      expect(checkTrace(s, source(c.events)), `seed ${seed}`).toMatchObject({ verdict: 'pass' });
      const states = guestStates(c.events);
      const of = (ch: number) => states.filter((x) => x.startsWith(`${ch}:`)).map((x) => x.slice(2)).join(' ');
      expect(of(0)).toBe('Enabled Opened Started Active');
      // Closed by the guest, its device removed; opened again after the restore, a new device.
      expect(of(1)).toBe('Enabled Opened Started Active Paused Closed Enabled Opened Started Active');
      // FORCE_NEW_CHANNEL: the restore re-offers it, so its device is removed and a new one added.
      expect(of(2)).toBe('Enabled Opened Started Active Paused Closed Enabled Opened Started Active');
      // The held requests end cancelled at the close; the new device numbers on.
      const g1 = (ev: string) => c.events.filter((e) => e.side === 'guest' && e.ev === ev && (e as { ch: number }).ch === 1).map((e) => (e as { tx: number }).tx);
      expect(g1('pkt.cancel')).toEqual([1, 2, 3]);
      expect(g1('pkt.send')).toEqual([1, 2, 3, 4]);
    }
  });
});

describe.skipIf(!toolchain)('devices: c-windows, the test-only removal race (cGuestRemovalRace)', () => {
  /** `s` run with the race: every property holds and the model explains it; each raced command's channel and status. */
  const racedRun = (s: Scenario, seed: number) => {
    const answers: Array<{ ch: number; status: number }> = [];
    const c = runOn('c-windows', s, seed, { cGuestRemovalRace: { count: 1, size: 64, answered: (ch, _line, status) => answers.push({ ch, status }) } });
    expect(c.result.driverViolation).toBeUndefined();
    expect(c.result.hang).toBeNull();
    expect(c.violations).toEqual([]);
    expect(checkTrace(s, source(c.events)), `seed ${seed}`).toMatchObject({ verdict: 'pass' });
    return { events: c.events, answers };
  };

  it('a host rescind only: KMCL closes the client, the command reaches its device and is refused, then PnP removes it; every property holds and the model explains the run', () => {
    const s = scenario([
      { op: 'guest-send', channel: 1, count: 3, size: 96, mode: 'hold', hold: 40 },
      { op: 'host-send', channel: 1, count: 2, size: 96, hold: 40 },
      { op: 'run', ms: 2 },
      { op: 'rescind', channel: 1 },
      { op: 'guest-close', channel: 0 },
      { op: 'guest-open', channel: 0 },
      { op: 'guest-send', channel: 1, count: 1, size: 64 },
      { op: 'settle' },
    ], { channels: 2 });
    for (const seed of [1, 2]) {
      const { events, answers } = racedRun(s, seed);
      // The guest's own close is PnP's from the start: no race there.
      expect(answers).toEqual([{ ch: 1, status: 0xc0000184 }]);
      const g1 = (ev: string) => events.filter((e) => e.side === 'guest' && e.ev === ev && (e as { ch: number }).ch === 1).map((e) => (e as { tx: number }).tx);
      // KMCL cancelled the Requests in flight at the rescind; nothing was sent until the new instance.
      expect(g1('pkt.cancel')).toEqual([1, 2, 3]);
      expect(g1('pkt.send')).toEqual([1, 2, 3, 4]);
    }
  });

  it('at a restore\'s and a migration\'s re-offer too (forceNewChannel), and at a rescind held unopened: each raced command refused, and the model explains the run', () => {
    const s = scenario([
      { op: 'guest-send', channel: 1, count: 3, size: 96, mode: 'hold', hold: 40 },
      { op: 'host-send', channel: 0, count: 2, size: 96, hold: 40 },
      { op: 'run', ms: 2 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'rescind', channel: 0, reopen: false },
      { op: 'migrate', to: 'b' },
      { op: 'guest-open', channel: 0 },
      { op: 'guest-send', channel: 0, count: 1, size: 64 },
      { op: 'settle' },
    ], { channels: [{ id: 0 }, { id: 1, forceNewChannel: true }] });
    for (const seed of [1, 2]) {
      const { answers } = racedRun(s, seed);
      // Channel 1 re-offered at the restore, channel 0 rescinded, channel 1 re-offered at the migration.
      expect(answers).toEqual([{ ch: 1, status: 0xc0000184 }, { ch: 0, status: 0xc0000184 }, { ch: 1, status: 0xc0000184 }]);
    }
  });

  it('property: the fixed driver refuses the raced command, and each side\'s events are those of the run without the race, whatever runs around the rescind', () => {
    // Invariant: a correct driver stops sending at its client's Suspend, so the race only
    // moves when the bench reads the guest's trace, never what either side does.
    const limits = { guestCount: 4, hostCount: 4, maxSize: 512, hold: 8 };
    const side = (events: readonly TraceEvent[], name: string) => events.filter((e) => e.side === name).map(({ seq: _seq, ...e }) => e);
    fc.assert(fc.property(
      fc.array(trafficStep(limits), { minLength: 1, maxLength: 4 }), fc.array(trafficStep(limits), { maxLength: 3 }), fc.integer({ min: 1, max: 1000 }),
      (before, after, seed) => {
        const s = scenario([...before, { op: 'rescind', channel: 0 }, ...after, { op: 'settle' }]);
        const statuses: number[] = [];
        const raced = runOn('c-windows', s, seed, { cGuestRemovalRace: { count: 2, size: 64, answered: (_ch, _line, status) => statuses.push(status) } });
        const plain = run(s, seed);
        expect(raced.result.driverViolation).toBeUndefined();
        expect(raced.violations).toEqual([]);
        expect(plain.violations).toEqual([]);
        expect(statuses).toEqual([0xc0000184]);
        for (const name of ['host', 'guest']) expect(side(raced.events, name)).toEqual(side(plain.events, name));
      },
    ), { numRuns: 25 });
  });

  it('is refused for any guest but the C Windows driver (a test-only option that would otherwise show nothing)', () => {
    const s = scenario([{ op: 'rescind', channel: 0 }]);
    expect(() => runOn('c-linux', s, 1, { cGuestRemovalRace: { count: 1, size: 64 } })).toThrow(/cGuestRemovalRace needs devices: c-windows/);
  });
});

describe.skipIf(!toolchain)('devices: c-windows, what the driver cannot run (exit 2)', () => {
  const refused = (s: Scenario, message: RegExp, field: string) => assertRefused('c-windows', s, message, field);

  it('a step that leaves every channel closed: the driver\'s control device goes with its last device', () => {
    refused(scenario([{ op: 'guest-send', count: 1, size: 64 }, { op: 'guest-close', channel: 0 }, { op: 'guest-open', channel: 0 }]), /step 2 \(guest-close\) leaves every channel closed/, 'steps[1].op');
    refused(scenario([{ op: 'guest-close', channel: 0 }, { op: 'rescind', channel: 1, reopen: false }, { op: 'guest-open', channel: 0 }, { op: 'guest-open', channel: 1 }], { channels: 2 }), /step 2 \(rescind\) leaves every channel closed/, 'steps[1].op');
  });

  it('a first tx other than 1, a loopback job', () => {
    assertFirstTxAndLoopbackRefused('c-windows');
  });
});
