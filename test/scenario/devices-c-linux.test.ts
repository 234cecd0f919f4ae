// `devices: c-linux`: a scenario runs with the sample's C VSP on the hosts and its C Linux
// guest driver (both compiled to WebAssembly) as the VM's guest, each driven through its
// own control interface. On every bench scenario and seeds 1-3 every property holds and
// the model (`bench check`'s replay) explains the trace; what the C guest cannot do yet is
// refused as bad input. (test/devices/wasm/c-vs-twin.test.ts holds the C guest's events
// to the twin guest's.)

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { checkTrace } from '../../src/check/replay.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import type { Scenario } from '../../src/scenario/model.ts';
import type { ExecuteOptions } from '../../src/scenario/execute-types.ts';
import { assertCheckpointApplyPutsGuestBack, assertFirstTxAndLoopbackRefused, assertSaveRestoreKeepsKey, runOn, scenarioOn, sourceOf, toolchain } from './c-guest-run.ts';

const suite = await loadScenarioPaths(['bench/scenarios']);

const run = (s: Scenario, seed = 1, more: Partial<ExecuteOptions> = {}) => runOn('c-linux', s, seed, more);
const source = (events: readonly TraceEvent[]) => sourceOf('c-linux', events);
const scenario = scenarioOn('c-linux');

describe.skipIf(!toolchain)('devices: c-linux', () => {
  it('every bench scenario (the rescind included), seeds 1-3: every property holds and the model explains the trace', () => {
    expect(suite.length).toBe(12);
    for (const s of suite) {
      for (const seed of [1, 2, 3]) {
        const c = run(s, seed);
        const what = `${s.name} seed ${seed}`;
        expect(c.result.hang, what).toBeNull();
        expect(c.result.driverViolation, what).toBeUndefined();
        expect(c.violations, what).toEqual([]);
        expect(checkTrace(s, source(c.events)), what).toMatchObject({ verdict: 'pass' });
      }
    }
  });

  it('the guest\'s events are the C driver\'s own trace: a driver that traces another state shows in the run\'s trace, and bench check names it', () => {
    // The Linux driver used to trace Started between Opened and Active, which the model
    // never writes for a Linux-style guest (lab/drivers/README.md, "Channel states").
    const unfixed = { 'guest-linux/sample_guest_main.c': fileURLToPath(new URL('../fixtures/drivers-unfixed/linux-started-sample_guest_main.patch', import.meta.url)) };
    const s = suite.find((x) => x.name === 'idle-save-restore')!;
    const before = run(s, 1, { cGuestReplace: unfixed });
    const states = before.events.filter((e) => e.side === 'guest' && e.ev === 'ch.state').map((e) => (e as { state: string }).state);
    expect(states).toEqual(['Opened', 'Started', 'Active']);
    expect(checkTrace(s, source(before.events))).toMatchObject({ verdict: 'diverge', class: 'state-order' });
    const after = run(s, 1);
    expect(after.events.filter((e) => e.side === 'guest' && e.ev === 'ch.state').map((e) => (e as { state: string }).state)).toEqual(['Opened', 'Active']);
  });

  it('a checkpoint applied puts the guest driver back as it was: what it held then completes once, its later sends are not remembered', () => {
    assertCheckpointApplyPutsGuestBack('c-linux');
  });

  it('a guest send that fills its ring sleeps while the host drains it, and every Request completes', () => {
    const s = scenario([{ op: 'guest-send', count: 60, size: 256, mode: 'deferred' }, { op: 'settle' }], { channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }] });
    const c = run(s);
    expect(c.violations).toEqual([]);
    expect(c.events.filter((e) => e.side === 'guest' && e.ev === 'pkt.completion')).toHaveLength(60);
    // The host received some of them while the step's sends were still going out.
    const firstRecv = c.events.findIndex((e) => e.side === 'host' && e.ev === 'pkt.recv');
    const lastSend = c.events.findLastIndex((e) => e.side === 'guest' && e.ev === 'pkt.send');
    expect(firstRecv).toBeGreaterThan(0);
    expect(firstRecv).toBeLessThan(lastSend);
    expect(checkTrace(s, source(c.events))).toMatchObject({ verdict: 'pass' });
  });
});

describe.skipIf(!toolchain)('devices: c-linux, a rescind and a guest close', () => {
  const rescind = () => suite.find((x) => x.name === 'rescind-and-reoffer')!;

  it('the old remove path is caught: Paused and Disabled the model never writes, Requests in flight never ended, and a re-offer that numbers from 1 again', () => {
    const unfixed = { 'guest-linux/sample_guest_main.c': fileURLToPath(new URL('../fixtures/drivers-unfixed/linux-rescind-sample_guest_main.patch', import.meta.url)) };
    const before = run(rescind(), 1, { cGuestReplace: unfixed });
    const classes = new Set(before.violations.map((v) => v.class));
    expect([...classes]).toEqual(expect.arrayContaining(['duplicated', 'lost', 'state-order']));
    expect(before.violations.find((v) => v.class === 'lost')!.message).toMatch(/rescinded or closed, and its sender never ended it/);
    expect(checkTrace(rescind(), source(before.events))).toMatchObject({ verdict: 'diverge', class: 'state-order' });
  });

  it('fixed: the guest ends each Request in flight with pkt.cancel (c0000120) after Closed, and its tx goes on across the re-offer', () => {
    const c = run(rescind());
    expect(c.violations).toEqual([]);
    const at = c.events.findIndex((e) => e.ev === 'ch.rescind' && (e as { ch: number }).ch === 1);
    const after = c.events.slice(at).filter((e) => e.side === 'guest' && (e as { ch: number }).ch === 1);
    expect(after[0]).toMatchObject({ ev: 'ch.state', state: 'Closed' });
    const cancels = after.filter((e) => e.ev === 'pkt.cancel');
    expect(cancels.length).toBeGreaterThan(0);
    expect(cancels.every((e) => (e as { status: string }).status === 'c0000120')).toBe(true);
    const sent = c.events.filter((e) => e.side === 'guest' && e.ev === 'pkt.send' && (e as { ch: number }).ch === 1).map((e) => (e as { tx: number }).tx);
    expect(new Set(sent).size).toBe(sent.length);
  });

  it('a guest close and open: the driver lets the device go and takes the channel again, and the model explains it', () => {
    const s = scenario([
      { op: 'host-send', count: 4, size: 256, hold: 30 },
      { op: 'guest-send', count: 3, size: 64, mode: 'hold', hold: 20 },
      { op: 'run', ms: 1 },
      { op: 'guest-close', channel: 0 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'guest-open', channel: 0 },
      { op: 'guest-send', count: 2, size: 64 },
      { op: 'settle' },
    ]);
    const c = run(s);
    expect(c.violations).toEqual([]);
    expect(checkTrace(s, source(c.events))).toMatchObject({ verdict: 'pass' });
    expect(c.events.filter((e) => e.side === 'guest' && e.ev === 'pkt.cancel').length).toBeGreaterThan(0);
  });
});

describe.skipIf(!toolchain)('devices: c-linux, what the C guest cannot do yet (exit 2)', () => {
  it('a first tx other than 1 (the driver numbers from 1), a loopback job (its client is a KMCL client in the host)', () => {
    assertFirstTxAndLoopbackRefused('c-linux');
  });

  it('explore\'s walk: the run is shown its save points, and a save and restore there leaves the key (the guest\'s image included) as it was', () => {
    assertSaveRestoreKeepsKey('c-linux', [{ op: 'guest-send', count: 2, size: 64 }, { op: 'run', ms: 5 }], 1);
  });
});
