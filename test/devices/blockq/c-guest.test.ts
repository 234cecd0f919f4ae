// blockq's C Linux guest driver (devices/blockq/c/guest-linux) on the emulator,
// `devices: c-linux`: against blockq's C VSP it takes blockq's command language through
// its debugfs control file, answers the VSP's Events after each one's own delay, and
// leaves nothing behind at rmmod; on every blockq scenario and seeds 1-3 its traces hold
// every property and the model explains them, and they are the twin guest's but for the
// differences listed below, each intended; explore's walk keys it (as its image).

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../../src/scenario/model.ts';
import { PropertyChecker, statusRuleOf } from '../../../src/check/properties.ts';
import { checkTrace } from '../../../src/check/replay.ts';
import { ArraySource } from '../../../src/check/observed.ts';
import { explore } from '../../../src/check/explore.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLabFile } from '../../../src/run/emulated/emulated-lab.ts';
import { runEmulatedNightly } from '../../../src/run/emulated/nightly-emulated.ts';
import { loadSummary } from '../../../src/report/summary-schema.ts';
import { runDirLayout } from '../../../src/report/run-dir.ts';
import { BlockqCVsp } from '../../../devices/blockq/c/vsp.ts';
import { blockqGuestLinuxRecipe } from '../../../devices/blockq/c/recipe.ts';
import { blockqControl } from '../../../devices/blockq/control.ts';
import { answerDelay } from '../../../devices/blockq/protocol.ts';
import { cLinuxPair } from '../wasm/support/c-linux-pair.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const CH = 5;
const INSTANCE = blockqControl.channelInstance(CH);

/** The guest driver loaded and probed for one channel of blockq's C VSP, on one clock; and the guest's counters file, parsed. */
function pair() {
  const p = cLinuxPair({
    vsp: (sink, now) => new BlockqCVsp({ choices: DEFAULT_CHOICES, sink, now }),
    recipe: blockqGuestLinuxRecipe(),
    ch: CH,
    instance: INSTANCE,
    open: blockqControl.channel({ op: 'open', ch: CH, instance: INSTANCE, ringPages: 4, loopback: true }),
  });
  const counters = () => blockqControl.counters('guest', p.guest.read('counters').split('\n'));
  return { ...p, counters };
}

const line = (step: Parameters<typeof blockqControl.command>[0]) => blockqControl.command(step).line;

describe.skipIf(!toolchain)('blockq\'s C Linux guest driver against its C VSP', () => {
  it('sends the Requests its control file is given in blockq\'s language, each answered once by the VSP', () => {
    const p = pair();
    const req = line({ op: 'guest-send', channel: CH, count: 5, size: 64, mode: 'hold', hold: 3 });
    expect(req).toBe(`request 5 64 2 3 ch=${CH}`);
    expect(p.guest.control(req)).toBe(req.length);
    p.pump();
    expect(p.counters().channels.get(CH)).toEqual({ sent: 5, completed: 0 });
    p.advance(10);
    const trace = p.guest.trace();
    expect(trace.filter((e) => e.ev === 'ch.state').map((e) => e.state)).toEqual(['Opened', 'Active']);
    expect(trace.filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1, 2, 3, 4, 5]);
    // The VSP answers out of order (hold + d(tx)); each reply is traced once, with the VSP's status.
    const completions = trace.filter((e) => e.ev === 'pkt.completion');
    expect(completions.map((e) => e.tx)).not.toEqual([1, 2, 3, 4, 5]);
    expect(completions.map((e) => e.tx).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(completions.find((e) => e.tx === 3)!.status).toBe('c0000010');
    expect(p.counters()).toMatchObject({ traceSeq: expect.any(Number) });
    expect(p.counters().channels.get(CH)).toEqual({ sent: 5, completed: 5 });
    expect(p.guest.read('counters')).toMatch(/completion_mismatch=0 /);
  });

  it('answers each of the VSP\'s Events hold + d(tx) ms after it arrived, replies of varying size', () => {
    const p = pair();
    p.vsp.run(line({ op: 'host-send', channel: CH, count: 4, size: 100, hold: 5 }));
    p.pump();
    expect(p.guest.read('counters')).toMatch(/held=4 /);
    const answeredBy = (ms: number) => {
      p.advance(ms - p.clock.now);
      return p.guest.trace().filter((e) => e.ev === 'pkt.complete').map((e) => e.tx);
    };
    // d(tx) = 2, 0, 3, 1 for tx % 4 = 0..3: tx 1 at 5 ms, 3 at 6, 2 at 8, 4 at 7.
    expect([1, 2, 3, 4].map((tx) => answerDelay(tx, 5))).toEqual([5, 8, 6, 7]);
    expect(answeredBy(4)).toEqual([]);
    expect(answeredBy(5)).toEqual([1]);
    expect(answeredBy(7)).toEqual([1, 3, 4]);
    expect(answeredBy(8)).toEqual([1, 3, 4, 2]);
    const complete = p.guest.trace().filter((e) => e.ev === 'pkt.complete');
    expect(complete.map((e) => e.len)).toEqual([44, 60, 68, 52]);
    expect(p.sink.events.filter((e) => e.ev === 'pkt.completion').map((e) => (e as { tx: number }).tx)).toEqual([1, 3, 4, 2]);
    expect(p.guest.read('counters')).toMatch(/completed=4 damaged=0 held=0 /);
  });

  it('`answer` answers every held Event now', () => {
    const p = pair();
    p.vsp.run(line({ op: 'host-send', channel: CH, count: 3, size: 64, hold: 50 }));
    p.pump();
    expect(p.guest.control(`answer ch=${CH}`)).toBeGreaterThan(0);
    p.advance(0);
    expect(p.guest.trace().filter((e) => e.ev === 'pkt.complete')).toHaveLength(3);
  });

  it('refuses a malformed line (-EINVAL) and the VSP\'s verbs (-EOPNOTSUPP), sending nothing', () => {
    const p = pair();
    for (const bad of [`request 1 10 0 0 ch=${CH}`, `request 1 64 3 0 ch=${CH}`, 'request 1 64 0 0', 'bogus', `request 1 64 0 ch=${CH}`]) expect(p.guest.control(bad), bad).toBe(-22);
    for (const vspOnly of [`event 1 64 0 ch=${CH}`, `save ch=${CH}`, `close ch=${CH}`]) expect(p.guest.control(vspOnly), vspOnly).toBe(-95);
    expect(p.guest.trace().filter((e) => e.ev === 'pkt.send')).toEqual([]);
  });

  it('property: every guest line blockqControl makes is taken by the guest driver, which sends exactly those Requests or Notes, each answered once', () => {
    const p = pair();
    let sent = 0;
    fc.assert(fc.property(
      fc.record({ count: fc.integer({ min: 1, max: 4 }), size: fc.integer({ min: 20, max: 3000 }), mode: fc.constantFrom('inline', 'deferred', 'hold'), hold: fc.integer({ min: 0, max: 20 }), note: fc.boolean() }),
      ({ count, size, mode, hold, note }) => {
        const step = note
          ? { op: 'notify' as const, channel: CH, dir: 'g2h' as const, count, size }
          : { op: 'guest-send' as const, channel: CH, count, size, mode: mode as 'inline' | 'deferred' | 'hold', hold };
        const { to, line: text } = blockqControl.command(step);
        expect(to).toBe('guest');
        expect(p.guest.control(text)).toBe(text.length);
        p.advance(30);
        const sends = p.guest.trace().filter((e) => e.ev === 'pkt.send').slice(sent);
        sent += sends.length;
        expect(sends.map((e) => [e.len, e.wantCompletion])).toEqual(Array(count).fill([size, !note]));
        // Every Request got its one reply: nothing is left in flight.
        const c = p.counters().channels.get(CH)!;
        expect(c.completed).toBe(c.sent);
      },
    ), { numRuns: 40 });
  });

  // Invariant (bq_guest.h, struct bqg_channel): an Event that wants a reply is held from its arrival until answered, once.
  it('property: whatever Events the VSP sends, with whatever holds, interleaved with the guest\'s Requests, the guest answers each exactly once, none before its due time (hold + d(tx))', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ count: fc.integer({ min: 1, max: 6 }), size: fc.integer({ min: 20, max: 1500 }), hold: fc.integer({ min: 0, max: 12 }), requests: fc.integer({ min: 0, max: 3 }), wait: fc.integer({ min: 0, max: 6 }) }), { minLength: 1, maxLength: 5 }),
      (bursts) => {
        const p = pair();
        const due = new Map<number, number>();
        let tx = 0;
        for (const b of bursts) {
          p.vsp.run(line({ op: 'host-send', channel: CH, count: b.count, size: b.size, hold: b.hold }));
          p.pump();
          for (let i = 0; i < b.count; i++) due.set(++tx, p.clock.now + answerDelay(tx, b.hold));
          if (b.requests > 0) expect(p.guest.control(line({ op: 'guest-send', channel: CH, count: b.requests, size: 64, mode: 'inline', hold: 0 }))).toBeGreaterThan(0);
          p.advance(b.wait);
          // Nothing answered yet is due after now.
          const early = p.guest.trace().filter((e) => e.ev === 'pkt.complete').map((e) => e.tx as number).filter((t) => due.get(t)! > p.clock.now);
          expect(early).toEqual([]);
        }
        p.advance(40);
        const answered = p.sink.events.filter((e) => e.ev === 'pkt.completion' && (e as { dir: string }).dir === 'h2g').map((e) => (e as { tx: number }).tx);
        expect([...answered].sort((a, b) => a - b)).toEqual([...due.keys()]);
        expect(p.guest.read('counters')).toMatch(/ held=0 /);
      },
    ), { numRuns: 15 });
  });

  it('the VSP refuses the guest\'s verbs as the guest refuses the VSP\'s: one language, each driver its own part', () => {
    const p = pair();
    for (const guestOnly of [`request 1 64 0 0 ch=${CH}`, 'trace-clear']) expect(p.vsp.command(guestOnly), guestOnly).not.toBe(0);
  });

  it('at rmmod ends what is in flight (its Requests cancelled, its held Events dropped) and leaks nothing', () => {
    const p = pair();
    p.vsp.run(line({ op: 'host-send', channel: CH, count: 2, size: 64, hold: 50 }));
    expect(p.guest.control(line({ op: 'guest-send', channel: CH, count: 2, size: 64, mode: 'hold', hold: 50 }))).toBeGreaterThan(0);
    p.pump();
    expect(p.guest.remove(CH)).toBe(true);
    const after = p.guest.trace();
    expect(after.filter((e) => e.ev === 'ch.state').map((e) => e.state)).toEqual(['Opened', 'Active', 'Closed']);
    expect(after.filter((e) => e.ev === 'pkt.cancel').map((e) => [e.tx, e.status])).toEqual([[1, 'c0000120'], [2, 'c0000120']]);
    expect(() => p.guest.unload()).not.toThrow();
  });
});

/**
 * Guest sends that fill their ring, then a host send: the twin queues, the Linux driver
 * sleeps while the host drains the ring, so the host reads the guest's packets before its
 * send step. bench check explains each trace as its guest's: the C Linux guest's as a
 * guest whose send waits for room (its run's devices say c-linux; src/check/replay.ts).
 */
const ringFull = toScenario(ScenarioSchema.parse({
  name: 'blockq-guest-ring-full',
  device: 'devices/blockq/device.ts',
  channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }],
  steps: [{ op: 'guest-send', count: 60, size: 256, mode: 'deferred' }, { op: 'host-send', count: 20, size: 200, hold: 1 }, { op: 'settle' }],
}));
const scenarios = await loadScenarioPaths(['devices/blockq/scenarios']);

function run(s: Scenario, devices: 'c' | 'c-linux', seed: number) {
  const sink = new MemorySink();
  const checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
  const r = executeScenario(s, { seed, sink, devices });
  for (const e of sink.events) checker.onEvent(e);
  const source = new ArraySource((sink.events as TraceEvent[]).map((event, i) => ({ event, file: 'c-linux.jsonl', line: i + 1 })));
  return { events: sink.events.map(({ seq: _s, ...e }) => e as Record<string, unknown>), violations: checker.finish(r.hang), result: r, check: checkTrace({ ...s, devices }, source) };
}

/** Each thing whose events must keep their order: a transaction (channel, direction, tx), a channel's states, the bench. */
function lives(events: ReadonlyArray<Record<string, unknown>>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of events) {
    const key = e.side === 'bench' ? 'bench' : e.ev === 'ch.state' ? `${String(e.side)} ch ${String(e.ch)}` : `${String(e.ch)}/${String(e.dir)}/${String(e.tx)}`;
    (out[key] ??= []).push(JSON.stringify(e));
  }
  return out;
}

/**
 * blockq's C Linux guest (devices: c-linux) and its twin guest (devices: c), each with
 * blockq's C VSP on the host, write the same events but for these intended differences,
 * each with its reason (the sample's guests differ the same ways: test/devices/wasm/c-vs-twin.test.ts):
 * - `pkt.queued` (guest): the twin queues a send its ring has no room for; the Linux
 *   driver never queues (Linux has no library queue): its thread sleeps while the host
 *   drains the ring, and it traces `pkt.send` once the packet is in the ring;
 * - order across transactions: one interrupt runs the driver's channel callback, which
 *   reads every packet in the ring, and one run of its delayed work answers every Event
 *   then due, where the twin reads one packet and answers one Event per scheduler step;
 *   so the events of different transactions, and the sides' events, interleave
 *   otherwise. Each transaction's own events, each channel's states and the bench's
 *   events keep their order, and the model explains the C guest's trace.
 * Nothing else: every digest, reply size, status and tx is the twin's.
 */
describe.skipIf(!toolchain)('blockq with devices: c-linux', () => {
  /** Seeds 1-3 on both guests; the model asked to explain the C guest's trace. */
  function compare(s: Scenario): void {
    let reordered = 0;
    let twinQueued = 0;
    for (const seed of [1, 2, 3]) {
      const what = `${s.name} seed ${seed}`;
      const c = run(s, 'c-linux', seed);
      expect(c.result.hang, what).toBeNull();
      expect(c.result.driverViolation, what).toBeUndefined();
      expect(c.violations, what).toEqual([]);
      expect(c.check, what).toMatchObject({ verdict: 'pass' });
      expect(c.events.filter((e) => e.side === 'guest' && e.ev === 'pkt.queued'), what).toEqual([]);
      const twin = run(s, 'c', seed);
      twinQueued += twin.events.filter((e) => e.side === 'guest' && e.ev === 'pkt.queued').length;
      const comparable = twin.events.filter((e) => !(e.side === 'guest' && e.ev === 'pkt.queued'));
      expect(lives(c.events), what).toEqual(lives(comparable));
      if (JSON.stringify(c.events) !== JSON.stringify(comparable)) reordered++;
    }
    // The listed differences are real here (else the list is stale).
    expect(reordered).toBeGreaterThan(0);
    if (s === ringFull) expect(twinQueued).toBeGreaterThan(0);
  }

  it.each(scenarios.map((s) => [s.name, s] as const))('%s, seeds 1-3: every property holds, the model explains the trace, and it is the twin guest\'s but for the listed differences', (_n, s) => {
    compare(s);
  }, 120_000);

  it('guest sends that fill their ring, then a host send, seeds 1-3: every property holds, the model explains the trace (the driver slept), and it is the twin guest\'s but for the listed differences (the twin queued)', () => {
    compare(ringFull);
  }, 120_000);

  it('explore\'s walk keys the C guest (as its image): it decides schedules without running them, with the verdicts of running each from the start', () => {
    const s = scenarios.find((x) => x.name === 'blockq-checkpoint')!;
    const opts = { seed: 1, ops: ['checkpoint' as const], maxSchedules: 12 };
    const walked = explore({ ...s, devices: 'c-linux' }, opts);
    const plain = explore({ ...s, devices: 'c-linux' }, { ...opts, plain: true });
    expect(walked.schedules).toBe(plain.schedules);
    expect(plain.ranInFull).toBe(plain.schedules);
    expect(walked.ranInFull).toBeLessThan(walked.schedules);
    expect(walked.failures).toEqual(plain.failures);
    expect(walked.failures).toEqual([]);
  }, 180_000);

  it('an emulated nightly with devices: c-linux runs blockq\'s scenarios with its C VSP and C guest under two hosts\' gap choices, every job passing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'blockq-c-linux-nightly-'));
    try {
      const lab = await loadLabFile('test/devices/blockq/fixtures/blockq-c-linux-lab.yaml');
      if (lab.kind !== 'emulated') throw new Error('fixture lab is not emulated');
      expect(lab.devices).toBe('c-linux');
      const r = await runEmulatedNightly({ lab, outRoot: out, reporters: ['json'], workers: 2 });
      const summary = await loadSummary(runDirLayout(r.runDir).summary);
      expect(summary.jobs.map((j) => j.verdict)).toEqual(Array(2 * scenarios.length).fill('pass'));
      for (const j of summary.jobs) {
        const guest = readFileSync(join(r.runDir, j.evidence!.trace!), 'utf8').trim().split('\n').map((x) => JSON.parse(x) as Record<string, unknown>).filter((e) => e.side === 'guest');
        // The guest's events are the driver's: a Linux-style open (no Started), never a queued send.
        expect(guest.filter((e) => e.ev === 'ch.state').slice(0, 2).map((e) => e.state), j.jobId).toEqual(['Opened', 'Active']);
        expect(guest.some((e) => e.ev === 'pkt.queued'), j.jobId).toBe(false);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
