// `devices: c`: a scenario runs with the C VSP (compiled to WebAssembly) as the host's
// VSP, driven through its control interface. On every bench scenario its trace equals
// the twins' trace but for the listed differences, every property holds, and the model
// (`bench check`'s replay) explains it.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';
import { checkTrace } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { emulateScenarios } from '../../src/run/commands/emulate.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../src/scenario/model.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const suite = await loadScenarioPaths(['bench/scenarios']);

function run(s: Scenario, devices: 'twin' | 'c', seed = 1) {
  const sink = new MemorySink('hyperv');
  const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  const r = executeScenario(s, { seed, sink, devices });
  for (const e of sink.events) checker.onEvent(e);
  return { events: sink.events as unknown as Array<Record<string, unknown>>, violations: checker.finish(r.hang, r.refusedRestores), result: r };
}

/**
 * The intended differences between a C VSP trace and the twin's, each with its reason:
 * - pkt.queued: the C VSP cannot see KMCL's queue and infers it from the bytes in flight
 *   and from whether a guest has the channel open (vsp/README.md), marked "inferred"; the
 *   inference errs towards "queued", so it names every packet the twin saw queued and may
 *   name more (compared separately);
 * - a HostTransaction a failed restore left the C VSP is cancelled at the rescind with
 *   STATUS_CANCELLED, whatever the cancelStatus choice (no KMCL call gives it a status);
 *   the twin uses the choice. The same under the default choice, which these runs use;
 * - pkt.save libLen is 0: KMCL does not tell a VSP the size of its own part;
 * - a Request held for a time that is not a multiple of the C VSP's 5 ms hold tick
 *   (VSP_HOLD_TICK_MS) completes at the next tick, not at its due time, so the events
 *   around it may come in another order: in such a scenario the same events are
 *   compared, not their order (the model allows both orders; its check is below).
 * Under `--fault corrupt-savebuf` (a platform bug, so not in these runs) the two differ
 * too: the C VSP refuses the damaged record where the twin restores it (the test of that
 * fault below says why, and what the checker says of each).
 * Nothing else: the states at a VM save (Paused, Closed), restore (Enabled ... Active
 * after every channel's packets are restored) and checkpoint apply (none) are the same.
 */
function normalise(events: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return events
    .filter((e) => e.ev !== 'pkt.queued')
    .map(({ seq: _s, ...e }) => (e.ev === 'pkt.save' ? { ...e, libLen: 'KMCL-private' } : e));
}

const asBag = (events: Array<Record<string, unknown>>) => events.map((e) => JSON.stringify(e)).sort();
const holdsOffTick = (s: Scenario) => s.steps.some((st) => st.op === 'guest-send' && st.mode === 'hold' && st.hold % 5 !== 0);

const queued = (events: Array<Record<string, unknown>>) => events.filter((e) => e.ev === 'pkt.queued').map((e) => `${e.ch}/${e.tx}`);

const source = (events: unknown[]) => new ArraySource((events as TraceEvent[]).map((event, i) => ({ event, file: 'c.jsonl', line: i + 1 })));

describe.skipIf(!toolchain)('devices: c', () => {
  it('every bench scenario: the C VSP\'s trace is the twins\' but for the listed differences, every property holds, and the model explains it', () => {
    // All twelve, the rescind ones (rescinds, a failing restore, FORCE_NEW_CHANNEL, a guest close) too.
    expect(suite.length).toBe(12);
    for (const s of suite) {
      const twin = run(s, 'twin');
      const c = run(s, 'c');
      expect(c.result.hang, s.name).toBeNull();
      expect(c.violations, s.name).toEqual([]);
      if (holdsOffTick(s)) expect(asBag(normalise(c.events)), s.name).toEqual(asBag(normalise(twin.events)));
      else expect(normalise(c.events), s.name).toEqual(normalise(twin.events));
      const inferred = new Set(queued(c.events));
      expect(queued(twin.events).filter((q) => !inferred.has(q)), s.name).toEqual([]);
      expect(checkTrace(s, source(c.events)), s.name).toMatchObject({ verdict: 'pass' });
    }
  });

  it.each(['save-and-continue', 'pulse'] as const)('a running checkpoint under %s: the C VSP takes the twin\'s path (its `resume` command, or restore onto a new object)', (runningCheckpoint) => {
    const s = toScenario(ScenarioSchema.parse({
      name: 'c-checkpoint',
      choices: { runningCheckpoint },
      steps: [
        { op: 'host-send', count: 8, size: 128, hold: 30 },
        { op: 'run', ms: 1 },
        { op: 'checkpoint', name: 'mid' },
        { op: 'host-send', count: 6, size: 128, hold: 5 },
        { op: 'guest-send', count: 8, size: 64 },
        { op: 'run', ms: 50 },
      ],
    }));
    const twin = run(s, 'twin');
    const c = run(s, 'c');
    expect(c.violations).toEqual([]);
    expect(normalise(c.events)).toEqual(normalise(twin.events));
    const restores = c.events.filter((e) => e.ev === 'pkt.restore').length;
    expect(restores).toBe(runningCheckpoint === 'pulse' ? c.events.filter((e) => e.ev === 'pkt.save').length : 0);
    expect(c.events.filter((e) => e.ev === 'pkt.save').length).toBeGreaterThan(0);
  });

  it('the model explains the C VSP\'s traces from other seeds too', () => {
    for (const s of suite) {
      for (const seed of [2, 3]) {
        const c = run(s, 'c', seed);
        expect(checkTrace(s, source(c.events)), `${s.name} seed ${seed}`).toMatchObject({ verdict: 'pass' });
      }
    }
  });

  it('the C VSP marks each pkt.queued it writes as inferred', () => {
    const c = run(suite.find((s) => s.name === 'ring-full-library-queue')!, 'c');
    const queued = c.events.filter((e) => e.ev === 'pkt.queued');
    expect(queued.length).toBeGreaterThan(0);
    expect(queued.every((e) => e.inferred === true)).toBe(true);
  });

  it('a migration restores the channel on the other host\'s C VSP, which goes on numbering from the VM\'s saved state', () => {
    const s = suite.find((x) => x.name === 'migrate-and-back')!;
    const c = run(s, 'c');
    const at = c.events.findIndex((e) => e.ev === 'vm.migrate.end');
    expect(at).toBeGreaterThan(0);
    // After the first move, host transactions keep their numbers: no tx is sent twice.
    const sent = c.events.filter((e) => e.side === 'host' && e.ev === 'pkt.send').map((e) => `${e.ch}/${e.tx}`);
    expect(new Set(sent).size).toBe(sent.length);
    expect(c.events.slice(at).some((e) => e.side === 'host' && e.ev === 'pkt.send')).toBe(true);
  });
});

describe.skipIf(!toolchain)('devices: c, a rescind, a failing restore, FORCE_NEW_CHANNEL and a guest close', () => {
  const scenario = (name: string, channels: unknown[], steps: unknown[]) => toScenario(ScenarioSchema.parse({ name, channels, steps }));
  const hostCancels = (events: Array<Record<string, unknown>>, ch: number) =>
    events.filter((e) => e.side === 'host' && e.ev === 'pkt.cancel' && e.ch === ch).map((e) => `${e.tx}:${e.status}`);
  const checked = (s: Scenario) => {
    const twin = run(s, 'twin');
    const c = run(s, 'c');
    expect(c.result.hang).toBeNull();
    expect(c.violations).toEqual([]);
    expect(normalise(c.events)).toEqual(normalise(twin.events));
    expect(checkTrace(s, source(c.events))).toMatchObject({ verdict: 'pass' });
    return c.events;
  };

  it('a restore the C VSP fails falls back to a rescind and a new offer: what it had restored ends cancelled, the numbering goes on', () => {
    const s = scenario('c-restore-fails', [{ id: 0 }, { id: 1 }], [
      { op: 'host-send', channel: 0, count: 4, size: 128, hold: 30 },
      { op: 'host-send', channel: 1, count: 2, size: 64, hold: 30 },
      { op: 'run', ms: 1 },
      { op: 'save' },
      { op: 'restore', fail: [0] },
      { op: 'host-send', channel: 0, count: 2, size: 64 },
      { op: 'settle' },
    ]);
    const events = checked(s);
    const rescind = events.findIndex((e) => e.ev === 'ch.rescind' && e.ch === 0);
    const offer = events.findIndex((e) => e.ev === 'ch.offer' && e.ch === 0);
    expect(rescind).toBeGreaterThan(0);
    expect(offer).toBeGreaterThan(rescind);
    // Channel 0's first saved packet was restored (then the VSP refused the second): the
    // rescind ends it, and every other one of the four, once, with STATUS_CANCELLED.
    expect(events.filter((e) => e.ev === 'pkt.restore' && e.ch === 0).map((e) => e.tx)).toEqual([1]);
    expect(hostCancels(events, 0)).toEqual(['1:c0000120']);
    // The new instance numbers on from the saved VM: 5 and 6, completed.
    expect(events.filter((e) => e.ev === 'pkt.completion' && e.ch === 0).map((e) => e.tx)).toEqual([5, 6]);
    // Channel 1 was restored as usual and cancelled nothing.
    expect(hostCancels(events, 1)).toEqual([]);
  });

  it('a rescind with traffic in flight: KMCL cancels what the C VSP had outstanding, each traced once with its status', () => {
    const s = scenario('c-rescind', [{ id: 0 }], [
      { op: 'host-send', channel: 0, count: 5, size: 200, hold: 40 },
      { op: 'guest-send', channel: 0, count: 3, size: 64, mode: 'hold', hold: 20 },
      { op: 'run', ms: 2 },
      { op: 'rescind', channel: 0 },
      { op: 'host-send', channel: 0, count: 2, size: 64 },
      { op: 'settle' },
    ]);
    const events = checked(s);
    const sent = events.filter((e) => e.side === 'host' && e.ev === 'pkt.send').map((e) => e.tx);
    expect(sent).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(hostCancels(events, 0).length).toBeGreaterThan(0);
  });

  it('FORCE_NEW_CHANNEL: the C VSP offers with the flag, and every restore offers the channel anew instead', () => {
    const s = scenario('c-force-new', [{ id: 0, forceNewChannel: true }], [
      { op: 'host-send', channel: 0, count: 3, size: 64, hold: 30 },
      { op: 'run', ms: 1 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'host-send', channel: 0, count: 2, size: 64 },
      { op: 'settle' },
    ]);
    const events = checked(s);
    expect(events.filter((e) => e.ev === 'ch.rescind').length).toBe(1);
    expect(events.filter((e) => e.ev === 'pkt.restore')).toEqual([]);
  });

  it('a guest close: the C VSP completes what it held, and ends as cancelled what KMCL hands back; sends wait for the reopen', () => {
    const s = scenario('c-guest-close', [{ id: 0 }], [
      { op: 'guest-send', channel: 0, count: 4, size: 256, mode: 'hold', hold: 20 },
      { op: 'host-send', channel: 0, count: 4, size: 256, hold: 30 },
      { op: 'run', ms: 2 },
      { op: 'guest-close', channel: 0 },
      { op: 'host-send', channel: 0, count: 2, size: 64 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'guest-open', channel: 0 },
      { op: 'settle' },
    ]);
    const events = checked(s);
    const closed = events.findIndex((e) => e.side === 'host' && e.ev === 'ch.state' && e.state === 'Closed');
    const cancels = hostCancels(events, 0);
    expect(cancels.length).toBeGreaterThan(0);
    expect(events.findIndex((e) => e.side === 'host' && e.ev === 'pkt.cancel')).toBeGreaterThan(closed);
    // The two sent while closed reach the guest once it opens the channel again.
    expect(events.filter((e) => e.ev === 'pkt.completion' && e.ch === 0).map((e) => e.tx)).toEqual(expect.arrayContaining([5, 6]));
  });
});

describe.skipIf(!toolchain)('devices: c, a driver that breaks a rule', () => {
  const unfixedD1 = { 'vsp/vsp-driver.c': fileURLToPath(new URL('../fixtures/drivers-unfixed/d1-vsp-driver.patch', import.meta.url)) };

  it('ends the run as a finding: kmcl.violation in the trace, the checker\'s kmcl-misuse, not an error', () => {
    const s = suite.find((x) => x.name === 'idle-save-restore')!;
    const sink = new MemorySink();
    const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    const r = executeScenario(s, { seed: 1, sink, devices: 'c', cVspReplace: unfixedD1 });
    for (const e of sink.events) checker.onEvent(e);
    expect(r.driverViolation).toMatch(/^driver violation irql\.passive-only in VmbChannelAllocate/);
    const v = sink.events.find((e) => e.ev === 'kmcl.violation')!;
    expect(v).toMatchObject({ side: 'host', ch: 0, rule: 'irql.passive-only', call: 'VmbChannelAllocate' });
    expect((v as { message: string }).message).toContain('VspEvtIoDeviceControl');
    // The run stopped there, as a bug check stops the machine: nothing after it.
    expect(sink.events.at(-1)).toMatchObject({ ev: 'scenario.end' });
    expect(checker.finish(r.hang, r.refusedRestores).map((x) => x.class)).toEqual(['kmcl-misuse']);
  });

  it('bench emulate writes the whole trace and a failing verdict (exit 1), naming the rule', async () => {
    const out = mkdtempSync(join(tmpdir(), 'devices-c-violation-'));
    const s = suite.find((x) => x.name === 'inflight-host-transactions')!;
    const summary = await emulateScenarios([s], { seed: 1, outDir: out, devices: 'c', cVspReplace: unfixedD1 });
    expect(summary.failed).toBe(1);
    expect(summary.scenarios[0]!.violations[0]).toMatchObject({ class: 'kmcl-misuse' });
    expect(summary.scenarios[0]!.violations[0]!.message).toContain('irql.passive-only');
    const lines = readFileSync(join(out, `${s.name}.jsonl`), 'utf8').trim().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ ev: 'scenario.end' });
    rmSync(out, { recursive: true, force: true });
  });
});

describe.skipIf(!toolchain)('devices: c, a platform bug', () => {
  it('--fault restore-twice acts on the C VSP\'s RestoreFromBuffer (the shim gives each new channel object the run\'s faults) and is caught as duplicated, as on the twins', async () => {
    const out = mkdtempSync(join(tmpdir(), 'devices-c-fault-'));
    const s = suite.find((x) => x.name === 'inflight-host-transactions')!;
    const c = await emulateScenarios([s], { seed: 1, outDir: out, devices: 'c', faults: ['restore-twice'] });
    const twin = await emulateScenarios([s], { seed: 1, outDir: out, faults: ['restore-twice'] });
    expect(c.failed).toBe(1);
    expect(c.scenarios[0]!.violations[0]).toMatchObject({ class: 'duplicated' });
    expect(c.scenarios[0]!.violations[0]).toEqual(twin.scenarios[0]!.violations[0]);
    rmSync(out, { recursive: true, force: true });
  });

  // The intended difference under this fault: the twin VSP checks its record's magic and
  // version (PROTOCOL.md) and restores the damaged record, so the trace shows the SaveBuf
  // changed (savebuf-mismatch); the C VSP also rebuilds the message from the record and
  // checks its digest, so it refuses the record, its EvtVmbChannelRestorePacket fails,
  // RestoreFromBuffer fails and the channel falls back to a rescind and re-offer. That
  // trace is legal on its own (a failed restore abandons what was saved); the run knows
  // the scenario did not ask the restore to fail, and says not-restored, as the model does.
  it('--fault corrupt-savebuf: the C VSP refuses the damaged record, and the restore the scenario did not ask to fail is caught as not-restored (the twins restore it: savebuf-mismatch)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'devices-c-fault-'));
    const s = suite.find((x) => x.name === 'inflight-host-transactions')!;
    const c = await emulateScenarios([s], { seed: 1, outDir: out, devices: 'c', faults: ['corrupt-savebuf'] });
    const events = readFileSync(join(out, `${s.name}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const twin = await emulateScenarios([s], { seed: 1, outDir: out, faults: ['corrupt-savebuf'] });
    expect(c.scenarios[0]!.faultsFired).toEqual(['corrupt-savebuf']);
    expect(c.failed).toBe(1);
    expect(c.scenarios[0]!.violations.map((v) => v.class)).toEqual(['not-restored']);
    expect(c.scenarios[0]!.violations[0]!.message).toContain("channel 0's saved state was refused at a restore");
    expect(twin.scenarios[0]!.violations.map((v) => v.class)).toEqual(['savebuf-mismatch']);
    // The C trace itself: no packet restored, the channel rescinded at the restore; and
    // the model, given that trace, says the same class.
    expect(events.filter((e) => e.ev === 'pkt.restore')).toEqual([]);
    expect(events.some((e) => e.ev === 'ch.rescind')).toBe(true);
    rmSync(out, { recursive: true, force: true });
    const faulty = new MemorySink('hyperv');
    executeScenario(s, { seed: 1, sink: faulty, devices: 'c', faults: ['corrupt-savebuf'] });
    expect(checkTrace(s, source(faulty.events))).toMatchObject({ verdict: 'diverge', class: 'not-restored' });
  });

  it('a restore the scenario asks to fail, and a FORCE_NEW_CHANNEL channel, are not refusals', () => {
    const s = suite.find((x) => x.name === 'rescind-and-reoffer')!;
    expect(s.steps.some((st) => st.op === 'restore' && (st.fail ?? []).length > 0)).toBe(true);
    for (const devices of ['twin', 'c'] as const) expect(run(s, devices).result.refusedRestores, devices).toEqual([]);
  });
});
