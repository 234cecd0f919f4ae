// blockq's C VSP (devices/blockq/c) on the emulator, `devices: c`: driven only through its
// own control interface, its traces hold every property and pass `bench check` on every
// blockq scenario and seeds 1-3 (run as a user runs them, through the CLI, as are
// explore and a platform fault); they equal
// the twin's traces but for the differences listed below, each intended; and a bug
// planted in its C source is reported as a named driver violation, not an error.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { explore } from '../../../src/check/explore.ts';
import { emulateScenarios } from '../../../src/run/commands/emulate.ts';
import { FAULT_MODES } from '../../../src/vmbus/faults.ts';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { PropertyChecker, statusRuleOf } from '../../../src/check/properties.ts';
import { checkTrace } from '../../../src/check/replay.ts';
import { ArraySource } from '../../../src/check/observed.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../../src/scenario/model.ts';
import type { GapChoices } from '../../../src/vmbus/choices.ts';
import { InputError } from '../../../src/errors.ts';
import { BLOCKQ_IOCTL } from '../../../devices/blockq/c/recipe.ts';
import { loadLabFile } from '../../../src/run/emulated/emulated-lab.ts';
import { runEmulatedNightly } from '../../../src/run/emulated/nightly-emulated.ts';
import { loadSummary } from '../../../src/report/summary-schema.ts';
import { runDirLayout } from '../../../src/report/run-dir.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const suite = await loadScenarioPaths(['devices/blockq/scenarios']);
const tmp = mkdtempSync(join(tmpdir(), 'blockq-c-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Ev = Record<string, unknown>;

function run(s: Scenario, devices: 'twin' | 'c', seed = 1, cVspReplace?: Record<string, string>, choices?: Partial<GapChoices>) {
  const sink = new MemorySink('emulator');
  const checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
  const r = executeScenario(s, { seed, sink, devices, cVspReplace, choices });
  for (const e of sink.events) checker.onEvent(e);
  return { events: sink.events as unknown as Ev[], violations: checker.finish(r.hang, r.refusedRestores), result: r };
}

/**
 * The intended differences between the C VSP's trace and the twin's, each with its reason:
 * - pkt.queued: the C VSP cannot see KMCL's queue; it infers "queued" from its ring bytes
 *   in flight (c/vsp-send.c) and marks it `inferred`. The inference errs towards queued,
 *   so it names every packet the twin saw queued (checked separately) and may name more;
 * - pkt.save libLen is 0: KMCL does not tell a VSP the size of its own part;
 * - the order of events across channels and sides: the C VSP's one-shot timer answers
 *   every Request due at that moment in one callback (and a scheduler step that fires the
 *   driver's timers fires every channel's), where the twin answers one Request per
 *   scheduler step. The seeded scheduler so picks among other tasks and interleaves
 *   other work differently. The same events happen (compared as a bag) and the model,
 *   which allows every order KMCL allows, explains the C trace (checked below).
 * Nothing else: every payload digest, reply size, status, SaveBuf record and state is
 * the twin's.
 */
function normalise(events: Ev[]): string[] {
  return events
    .filter((e) => e.ev !== 'pkt.queued')
    .map(({ seq: _seq, ...e }) => JSON.stringify(e.ev === 'pkt.save' ? { ...e, libLen: 'KMCL-private' } : e));
}
const bag = (events: Ev[]) => normalise(events).sort();
const queued = (events: Ev[]) => events.filter((e) => e.ev === 'pkt.queued').map((e) => `${e.ch}/${e.tx}`);
const source = (events: Ev[]) => new ArraySource((events as unknown as TraceEvent[]).map((event, i) => ({ event, file: 'c.jsonl', line: i + 1 })));

describe.skipIf(!toolchain)('blockq on its C VSP (devices: c)', () => {
  it('bench emulate --devices c runs every blockq scenario and bench check passes each trace, seeds 1-3', () => {
    const bench = (...args: string[]) => spawnSync(process.execPath, ['bin/bench.js', ...args], { encoding: 'utf8', timeout: 300_000 });
    for (const seed of ['1', '2', '3']) {
      const out = join(tmp, `cli-${seed}`);
      const e = bench('emulate', 'devices/blockq/scenarios', '--devices', 'c', '--seed', seed, '--out', out);
      expect(e.status, e.stderr).toBe(0);
      expect(e.stdout.match(/^pass /gm)).toHaveLength(suite.length);
      for (const s of suite) {
        const c = bench('check', '--scenario', s.source!.file!, '--trace', join(out, `${s.name}.jsonl`));
        expect(c.status, `${s.name} seed ${seed}: ${c.stdout}${c.stderr}`).toBe(0);
        expect(c.stdout).toMatch(new RegExp(`pass\\s+${s.name}: all \\d+ events explained`));
      }
    }
  }, 240_000);

  it('bench explore --devices c walks blockq\'s save points on the C VSP', () => {
    const r = spawnSync(process.execPath, ['bin/bench.js', 'explore', 'devices/blockq/scenarios/02-migrate.yaml', '--devices', 'c', '--max-schedules', '3', '--workers', '1'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^3 passed, 0 failed/m);
  }, 120_000);

  it('explore\'s walk keys the C VSP (keyDriver, c/vsp-key.ts): it decides schedules without running them, with the verdicts of running each from the start', () => {
    const s = suite.find((x) => x.name === 'blockq-checkpoint')!;
    const opts = { seed: 1, ops: ['checkpoint' as const] };
    const walked = explore({ ...s, devices: 'c' }, opts);
    const plain = explore({ ...s, devices: 'c' }, { ...opts, plain: true });
    expect(walked.schedules).toBe(plain.schedules);
    expect(plain.ranInFull).toBe(plain.schedules);
    expect(walked.ranInFull).toBeLessThan(walked.schedules);
    expect(walked.failures).toEqual(plain.failures);
  }, 180_000);

  it('explore\'s walk keys the C VSP across its rescinds and re-offers too (Retiring, Rescinded, Unopened, Abandoned): the verdicts of running each schedule from the start', () => {
    const s = suite.find((x) => x.name === 'blockq-rescind-and-reoffer')!;
    const opts = { seed: 1, ops: ['checkpoint' as const], maxSchedules: 16 };
    const walked = explore({ ...s, devices: 'c' }, opts);
    const plain = explore({ ...s, devices: 'c' }, { ...opts, plain: true });
    expect(walked.schedules).toBe(plain.schedules);
    expect(walked.ranInFull).toBeLessThan(walked.schedules);
    expect(walked.failures).toEqual(plain.failures);
    expect(walked.failures).toEqual([]);
  }, 180_000);

  it('an emulated nightly with devices: c runs blockq\'s scenarios on its C VSP under two hosts\' gap choices, every job passing', async () => {
    const lab = await loadLabFile('test/devices/blockq/fixtures/blockq-c-lab.yaml');
    if (lab.kind !== 'emulated') throw new Error('fixture lab is not emulated');
    expect(lab.devices).toBe('c');
    const r = await runEmulatedNightly({ lab, outRoot: join(tmp, 'nightly'), reporters: ['json'], workers: 2 });
    const summary = await loadSummary(runDirLayout(r.runDir).summary);
    expect(summary.jobs).toHaveLength(2 * suite.length);
    expect(summary.jobs.map((j) => j.verdict)).toEqual(Array(2 * suite.length).fill('pass'));
    // The C VSP's hallmark in every trace with a save: KMCL does not tell it libLen.
    for (const j of summary.jobs) {
      const saves = readFileSync(join(r.runDir, j.evidence!.trace!), 'utf8').trim().split('\n').map((x) => JSON.parse(x) as Ev).filter((e) => e.ev === 'pkt.save');
      expect(saves.length, j.jobId).toBeGreaterThan(0);
      expect(saves.every((e) => e.libLen === 0), j.jobId).toBe(true);
    }
  }, 120_000);

  it.each(FAULT_MODES.map((f) => [f]))('platform bug %s: caught on the C VSP as on the twins (the same verdict and first finding per scenario, the fault acting in the same runs)', async (fault) => {
    const outcome = async (devices: 'twin' | 'c') => (await emulateScenarios(suite, { seed: 1, outDir: join(tmp, `faults-${devices}`), devices, faults: [fault] })).scenarios
      .map((o) => ({ name: o.name, verdict: o.verdict, first: o.violations[0]?.class, fired: o.faultsFired ?? [] }));
    expect(await outcome('c')).toEqual(await outcome('twin'));
  });

  it('a platform bug (--fault restore-twice) acts on the C VSP\'s restores too: each scenario fails with duplicated, exit 1', () => {
    const r = spawnSync(process.execPath, ['bin/bench.js', 'emulate', 'devices/blockq/scenarios', '--devices', 'c', '--fault', 'restore-twice', '--out', join(tmp, 'fault')], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout.match(/^FAIL /gm)).toHaveLength(suite.length);
    expect(r.stdout.match(/duplicated: \d+\/h2g\/\d+ restored twice from one save/g)).toHaveLength(suite.length);
    expect(r.stdout).not.toMatch(/did not act/);
  }, 180_000);

  it.each(suite.map((s) => [s.name, s] as const))('%s: the C trace is the twin\'s but for the listed differences, seeds 1-3', (_n, s) => {
    for (const seed of [1, 2, 3]) {
      const twin = run(s, 'twin', seed);
      const c = run(s, 'c', seed);
      expect(c.result.hang, `seed ${seed}`).toBeNull();
      expect(c.result.driverViolation, `seed ${seed}`).toBeFalsy();
      expect(c.violations, `seed ${seed}`).toEqual([]);
      expect(bag(c.events), `seed ${seed}`).toEqual(bag(twin.events));
      const inferred = new Set(queued(c.events));
      expect(queued(twin.events).filter((q) => !inferred.has(q)), `seed ${seed}`).toEqual([]);
      expect(c.events.filter((e) => e.ev === 'pkt.queued').every((e) => e.inferred === true)).toBe(true);
      expect(checkTrace(s, source(c.events)), `seed ${seed}`).toMatchObject({ verdict: 'pass' });
    }
  });

  it('a restore the C VSP refuses falls back to a rescind and a new offer, the restored Events ended cancelled, as on the twin: its trace is the twin\'s but for the listed differences, under both cancel statuses', () => {
    const s = toScenario(ScenarioSchema.parse({
      name: 'blockq-restore-refused',
      device: 'devices/blockq/device.ts',
      channels: [{ id: 0 }, { id: 1 }],
      steps: [
        { op: 'guest-send', channel: 1, count: 4, size: 128, mode: 'hold', hold: 10 },
        { op: 'host-send', channel: 1, count: 6, size: 200, hold: 30 },
        { op: 'host-send', channel: 0, count: 3, size: 200, hold: 30 },
        { op: 'run', ms: 2 },
        { op: 'save' },
        { op: 'restore', fail: [1] },
        { op: 'guest-send', channel: 1, count: 2, size: 64 },
        { op: 'settle' },
      ],
    }));
    for (const cancelStatus of ['cancelled', 'device-removed'] as const) {
      const twin = run(s, 'twin', 1, undefined, { cancelStatus });
      const c = run(s, 'c', 1, undefined, { cancelStatus });
      expect(c.violations, cancelStatus).toEqual([]);
      expect(bag(c.events), cancelStatus).toEqual(bag(twin.events));
      expect(checkTrace({ ...s, choices: { ...s.choices, cancelStatus } }, source(c.events)), cancelStatus).toMatchObject({ verdict: 'pass' });
      // Channel 1's restored Events end with the rescind the refusal falls back to.
      expect(c.events.filter((e) => e.ev === 'pkt.cancel' && e.side === 'host' && e.ch === 1).length, cancelStatus).toBeGreaterThan(0);
    }
  });

  it('a channel with forceNewChannel is refused on the C VSP (exit 2), whose open has none, rather than run as a plain channel; the twin offers it anew', () => {
    const s = toScenario(ScenarioSchema.parse({
      name: 'blockq-force-new',
      device: 'devices/blockq/device.ts',
      channels: [{ id: 0, forceNewChannel: true }],
      steps: [{ op: 'host-send', count: 3, size: 200, hold: 30 }, { op: 'run', ms: 2 }, { op: 'save' }, { op: 'restore' }, { op: 'settle' }],
    }));
    const twin = run(s, 'twin');
    expect(twin.violations).toEqual([]);
    expect(twin.events.some((e) => e.ev === 'ch.offer')).toBe(true);
    let error: unknown;
    try {
      run(s, 'c');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(2);
    expect((error as Error).message).toMatch(/channel 0 sets forceNewChannel, and blockq's C VSP has no FORCE_NEW_CHANNEL offer/);
  });

  it('answers out of order with replies of several sizes, several outstanding, and saves records of every size', () => {
    const c = run(suite.find((s) => s.name === 'blockq-save-restore')!, 'c');
    const replies = c.events.filter((e) => e.ev === 'pkt.complete' && e.side === 'host' && e.ch === 0);
    const txs = replies.map((e) => e.tx as number);
    expect(txs).not.toEqual([...txs].sort((a, b) => a - b));
    expect(new Set(replies.map((e) => e.len)).size).toBeGreaterThanOrEqual(4);
    expect(new Set(c.events.filter((e) => e.ev === 'pkt.save').map((e) => e.saveLen))).toEqual(new Set([32, 40, 48]));
    // Several outstanding: more Requests of channel 0 arrived than were answered, at some point.
    let most = 0;
    let open = 0;
    for (const e of c.events) {
      if (e.side !== 'host' || e.ch !== 0 || e.dir !== 'g2h') continue;
      if (e.ev === 'pkt.recv') open++;
      if (e.ev === 'pkt.complete') open--;
      most = Math.max(most, open);
    }
    expect(most).toBeGreaterThanOrEqual(4);
  });
});

describe.skipIf(!toolchain)('blockq\'s control interface', () => {
  it('the IOCTL codes the bench sends are the ones blockq-control.h defines', () => {
    const asserts = Object.entries({ COMMAND: BLOCKQ_IOCTL.command, COUNTERS: BLOCKQ_IOCTL.counters, EXPORT: BLOCKQ_IOCTL.export, IMPORT: BLOCKQ_IOCTL.import })
      .map(([name, code]) => `_Static_assert(IOCTL_BLOCKQ_${name} == 0x${code.toString(16)}u, "IOCTL_BLOCKQ_${name}");`).join('\n');
    const r = spawnSync('clang', ['--target=wasm32', '-fsyntax-only', '-fms-extensions', '-nostdlibinc', '-isystem', 'lab/drivers/wdk-standin/km', '-I', 'devices/blockq/c', '-x', 'c', '-'], {
      input: `#include <ntddk.h>\n#include "blockq-control.h"\n${asserts}\n`, encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe.skipIf(!toolchain)('a bug planted in the blockq C VSP', () => {
  // Before arming the answer timer again, the VSP stops it and waits for a running
  // callback (Wait=TRUE): a PASSIVE-only call from a path that runs at DISPATCH_LEVEL
  // (ProcessPacket, the timer callback). A Driver Verifier bug check on a real host.
  const original = readFileSync(fileURLToPath(new URL('../../../devices/blockq/c/vsp-receive.c', import.meta.url)), 'utf8');
  const planted = original.replace('\tnow = KeQueryInterruptTime();\n\t/* Negative', '\tWdfTimerStop(Vc->AnswerTimer, TRUE);\n\tnow = KeQueryInterruptTime();\n\t/* Negative');
  const fixture = join(tmp, 'vsp-receive-wait-at-dispatch.c');
  writeFileSync(fixture, planted);

  it('is reported as a named violation with the driver\'s frames, ending the run as a finding', () => {
    expect(planted).not.toBe(original);
    const s = suite.find((x) => x.name === 'blockq-save-restore')!;
    const r = run(s, 'c', 1, { 'vsp-receive.c': fixture });
    expect(r.result.driverViolation).toMatch(/^driver violation irql\.passive-only in WdfTimerStop\(Wait=TRUE\) at BqArm <- BqEvtProcessPacket/);
    const v = r.events.find((e) => e.ev === 'kmcl.violation')!;
    expect(v).toMatchObject({ side: 'host', rule: 'irql.passive-only', call: 'WdfTimerStop(Wait=TRUE)' });
    expect(r.events.at(-1)).toMatchObject({ ev: 'scenario.end' });
    expect(r.violations[0]).toMatchObject({ class: 'kmcl-misuse' });
    expect(r.violations[0]!.message).toContain('irql.passive-only');
  }, 120_000);

  it('the unplanted source runs the same scenario clean', () => {
    const r = run(suite.find((x) => x.name === 'blockq-save-restore')!, 'c');
    expect(r.result.driverViolation).toBeFalsy();
    expect(r.violations).toEqual([]);
  });
});
