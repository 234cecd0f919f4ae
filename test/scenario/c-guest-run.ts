// Shared by the C guest scenario tests (devices-c-linux.test.ts, devices-c-windows.test.ts):
// run a scenario with the sample's C VSP and one of its C guests, check every property of
// the trace as the bench's checker does, hand the trace to `bench check`'s replay, and
// the tests both guests must pass alike (a checkpoint applied; what they refuse as bad input).

import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import { checkTrace } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../src/scenario/model.ts';
import type { ExecuteOptions } from '../../src/scenario/execute-types.ts';
import { InputError } from '../../src/errors.ts';

/** clang and wasm-ld are here: the C drivers build. */
export const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

export type CGuestDevices = 'c-linux' | 'c-windows';

/** The sample's status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

/** The scenario run with the sample's C guest `devices`: its events, the properties it breaks, the executor's result. */
export function runOn(devices: CGuestDevices, s: Scenario, seed = 1, more: Partial<ExecuteOptions> = {}) {
  const sink = new MemorySink('hyperv');
  const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  const r = executeScenario(s, { seed, sink, devices, ...more });
  for (const e of sink.events) checker.onEvent(e);
  return { events: sink.events, violations: checker.finish(r.hang, r.refusedRestores), result: r };
}

/** The events as `bench check` reads them from a trace file named for the guest. */
export const sourceOf = (devices: CGuestDevices, events: readonly TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: `${devices}.jsonl`, line: i + 1 })));

/** A scenario from a literal's steps (and more of its fields), named for the guest. */
export const scenarioOn = (devices: CGuestDevices) => (steps: unknown[], more: Record<string, unknown> = {}): Scenario => toScenario(ScenarioSchema.parse({ name: devices, steps, ...more }));

/**
 * A checkpoint applied puts the guest driver back as it was: what it held then is
 * completed once after the apply, and it numbers its Requests from where it was then.
 */
export function assertCheckpointApplyPutsGuestBack(devices: CGuestDevices): void {
  const s = scenarioOn(devices)([
    { op: 'host-send', count: 4, size: 128, hold: 30 },
    { op: 'run', ms: 1 },
    { op: 'checkpoint', name: 'cp' },
    { op: 'guest-send', count: 3, size: 64 },
    { op: 'settle' },
    { op: 'apply-checkpoint', name: 'cp' },
    { op: 'guest-send', count: 2, size: 64 },
    { op: 'settle' },
  ]);
  const c = runOn(devices, s);
  expect(c.violations).toEqual([]);
  expect(checkTrace(s, sourceOf(devices, c.events))).toMatchObject({ verdict: 'pass' });
  const at = c.events.findIndex((e) => e.ev === 'vm.checkpoint.apply.end');
  const after = (ev: string) => c.events.slice(at).filter((e) => e.side === 'guest' && e.ev === ev).map((e) => (e as { tx: number }).tx);
  // After the apply the driver numbers its Requests from where it was at the checkpoint.
  expect(after('pkt.send')).toEqual([1, 2]);
  // Each held HostTransaction is completed once after the apply (the guest's older copy holds them).
  expect(after('pkt.complete').sort()).toEqual([1, 2, 3, 4]);
}

/** Running `s` with the C guest is refused as bad input (exit 2) naming `field`, with a message matching `message`. */
export function assertRefused(devices: CGuestDevices, s: Scenario, message: RegExp, field: string): void {
  let err: unknown;
  try {
    runOn(devices, s);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).toMatch(message);
  expect((err as InputError).location.field).toBe(field);
}

/** What neither C guest can run: a first tx other than 1 (the drivers number from 1), and a loopback job (its client is a KMCL client in the host). */
export function assertFirstTxAndLoopbackRefused(devices: CGuestDevices): void {
  const scenario = scenarioOn(devices);
  assertRefused(devices, scenario([{ op: 'guest-send', count: 1, size: 64 }], { channels: [{ id: 0, firstTx: 5 }] }), new RegExp(`channels\\[0\\]\\.firstTx: devices: ${devices} cannot set firstTx`), 'channels[0].firstTx');
  assertRefused(devices, scenario([{ op: 'guest-send', count: 1, size: 64 }], { topology: 'loopback' }), new RegExp(`devices: ${devices} has no loopback form`), 'devices');
}

/**
 * Explore's walk: the run of `steps` is shown more than `minPoints` save points, and a
 * save and restore at each leaves the run's key (the guest's image included) as it was.
 */
export function assertSaveRestoreKeepsKey(devices: CGuestDevices, steps: unknown[], minPoints: number): void {
  let points = 0;
  runOn(devices, scenarioOn(devices)(steps), 1, {
    atSavePoint: (_at, p) => {
      points++;
      const before = p.key({ explain: true });
      p.run('save-restore');
      expect(p.key({ explain: true }).firstDifference(before)).toBeNull();
      return 'go-on';
    },
  });
  expect(points).toBeGreaterThan(minPoints);
}
