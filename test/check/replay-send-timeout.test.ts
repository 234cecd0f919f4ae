// bench check on a trace where the Linux guest driver's send gives up. The sample's (and
// blockq's) Linux driver retries a send on a full ring for 5 s, then gives up: it traces
// `pkt.timeout` for the packet, never tries the rest of the step, and its next send reuses
// the id. An emulated host that stops reading (a VSP at its transaction quota, holding
// every request for 10 s) makes the C Linux guest do exactly that; the model accepts the
// give-up where its own send is blocked with the ring full, and refuses one where the
// host had freed room, a packet both given up and delivered, and the like.

import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { executeScenario } from '../../src/scenario/execute.ts';
import { checkTrace, type CheckResult, type GuestSends } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../src/scenario/model.ts';
import { stalledOn } from './support/send-timeout-scenario.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const stalled = stalledOn();

// blockq's device module, loaded as its scenarios load it.
await loadScenarioPaths(['devices/blockq/scenarios/01-save-restore.yaml']);

function check(s: Scenario, events: readonly TraceEvent[], guestSends?: GuestSends): CheckResult {
  const source = new ArraySource(events.map((event, i) => ({ event, file: 'send-timeout.jsonl', line: i + 1 })));
  return checkTrace(s, source, guestSends === undefined ? {} : { guestSends });
}

const renumber = (events: TraceEvent[]): TraceEvent[] => events.map((e, i) => ({ ...e, seq: i + 1 }));
const isTimeout = (e: TraceEvent) => e.ev === 'pkt.timeout';

describe.skipIf(!toolchain)('bench check on a C Linux guest whose send times out', () => {
  let good: TraceEvent[] = [];
  let giveUp = -1;
  beforeAll(() => {
    const sink = new MemorySink();
    const r = executeScenario(stalled, { seed: 1, sink });
    expect(r.hang).toBeNull();
    good = sink.events as TraceEvent[];
    giveUp = good.findIndex(isTimeout);
  }, 120_000);

  it('the run really timed out: 18 sends went in, the 19th was given up, the rest never tried, and the next step reused its id', () => {
    expect(good.filter(isTimeout)).toEqual([expect.objectContaining({ side: 'guest', ch: 0, tx: 19, dir: 'g2h', len: 256 })]);
    const sends = good.filter((e) => e.ev === 'pkt.send' && e.side === 'guest');
    expect(sends.map((e) => (e as { tx: number }).tx)).toEqual([...Array.from({ length: 18 }, (_, i) => i + 1), 19, 20]);
    expect(sends.filter((e) => (e as { len: number }).len === 64).map((e) => (e as { tx: number }).tx)).toEqual([19, 20]);
    // Between the 18th send and the give-up the host read nothing of the guest's ring.
    const last = good.findIndex((e) => e.ev === 'pkt.send' && e.side === 'guest' && e.tx === 18);
    expect(good.slice(last, giveUp).some((e) => e.side === 'host' && e.ev === 'pkt.recv')).toBe(false);
  });

  it('passes as a waiting guest\'s trace (its scenario says c-linux), and fails as a queueing guest\'s', () => {
    expect(check(stalled, good)).toMatchObject({ verdict: 'pass' });
    expect(check(stalled, good, 'queue')).toMatchObject({ verdict: 'diverge' });
  });

  it('a give-up after the host had freed room (moved past the host\'s next read of the ring): spurious, at the give-up', () => {
    const read = good.findIndex((e, i) => i > giveUp && e.side === 'host' && e.ev === 'pkt.recv' && e.ch === 0 && e.dir === 'g2h');
    const early = renumber([...good.slice(0, giveUp), ...good.slice(giveUp + 1, read + 1), good[giveUp]!, ...good.slice(read + 1)]);
    const r = check(stalled, early);
    expect(r).toMatchObject({ verdict: 'diverge', class: 'spurious' });
    if (r.verdict === 'diverge') expect(r.firstUnexplained?.event).toMatchObject({ ev: 'pkt.timeout', tx: 19 });
  });

  it('a packet given up and received by the host: spurious, at the receive', () => {
    const gaveUp = good[giveUp] as Extract<TraceEvent, { ev: 'pkt.timeout' }>;
    const recv: TraceEvent = { v: 1, seq: 0, src: 'emulator', side: 'host', ev: 'pkt.recv', ch: 0, tx: 19, dir: 'g2h', len: gaveUp.len, digest: gaveUp.digest };
    const r = check(stalled, renumber([...good.slice(0, giveUp + 1), recv, ...good.slice(giveUp + 1)]));
    expect(r).toMatchObject({ verdict: 'diverge', class: 'spurious' });
    if (r.verdict === 'diverge') expect(r.firstUnexplained?.event).toMatchObject({ side: 'host', ev: 'pkt.recv', tx: 19 });
  });

  it('a packet traced as sent and then given up: spurious, at the give-up', () => {
    const gaveUp = good[giveUp] as Extract<TraceEvent, { ev: 'pkt.timeout' }>;
    const send: TraceEvent = { v: 1, seq: 0, src: 'emulator', side: 'guest', ev: 'pkt.send', ch: 0, tx: 19, dir: 'g2h', len: gaveUp.len, digest: gaveUp.digest, wantCompletion: true };
    const r = check(stalled, renumber([...good.slice(0, giveUp), send, ...good.slice(giveUp)]));
    expect(r).toMatchObject({ verdict: 'diverge', class: 'spurious' });
  });

  it('a give-up naming another packet than the one waiting (each of its fields changed in turn): diverges, payload for its bytes', () => {
    const changed = (f: Record<string, unknown>) => renumber([...good.slice(0, giveUp), { ...good[giveUp]!, ...f } as TraceEvent, ...good.slice(giveUp + 1)]);
    expect(check(stalled, changed({ digest: '0123456789abcdef' }))).toMatchObject({ verdict: 'diverge', class: 'payload' });
    expect(check(stalled, changed({ len: 255 }))).toMatchObject({ verdict: 'diverge', class: 'payload' });
    expect(check(stalled, changed({ tx: 20 }))).toMatchObject({ verdict: 'diverge', class: 'spurious' });
    expect(check(stalled, changed({ dir: 'h2g' }))).toMatchObject({ verdict: 'diverge' });
    expect(check(stalled, changed({ side: 'host' }))).toMatchObject({ verdict: 'diverge' });
  });

  it('property: wherever the give-up is moved, the trace passes exactly when it comes after the last send and before the host reads the ring again', () => {
    const lastSend = good.findIndex((e) => e.ev === 'pkt.send' && e.side === 'guest' && e.tx === 18);
    const nextStep = good.findIndex((e, i) => i > giveUp && e.ev === 'pkt.send' && e.side === 'guest');
    const without = good.filter((_, i) => i !== giveUp);
    fc.assert(fc.property(fc.integer({ min: lastSend - 2, max: nextStep - 1 }), (at) => {
      // `at`: the give-up's index among the other events (it goes before without[at]).
      const moved = renumber([...without.slice(0, at), good[giveUp]!, ...without.slice(at)]);
      const afterLastSend = at > lastSend;
      const hostReadBefore = without.slice(lastSend + 1, at).some((e) => e.side === 'host' && e.ev === 'pkt.recv' && e.dir === 'g2h');
      const r = check(stalled, moved);
      if (afterLastSend && !hostReadBefore) expect(r, `at ${at}`).toMatchObject({ verdict: 'pass' });
      else if (afterLastSend) expect(r, `at ${at}`).toMatchObject({ verdict: 'diverge', class: 'spurious' });
      else expect(r, `at ${at}`).toMatchObject({ verdict: 'diverge' });
    }), { numRuns: 30 });
  });

  it('the same give-up without its pkt.timeout (a driver that gives up silently) diverges', () => {
    const silent = renumber(good.filter((e) => !isTimeout(e)));
    expect(check(stalled, silent)).toMatchObject({ verdict: 'diverge' });
  });
});

describe.skipIf(!toolchain)('blockq\'s C Linux guest, whose send times out the same way', () => {
  it('traces the give-up, and bench check explains the trace with blockq\'s twins', () => {
    const s = stalledOn('devices/blockq/device.ts');
    const sink = new MemorySink();
    expect(executeScenario(s, { seed: 1, sink }).hang).toBeNull();
    const events = sink.events as TraceEvent[];
    expect(events.filter(isTimeout)).toEqual([expect.objectContaining({ side: 'guest', ch: 0, dir: 'g2h', tx: 19 })]);
    expect(check(s, events)).toMatchObject({ verdict: 'pass' });
  }, 120_000);
});
