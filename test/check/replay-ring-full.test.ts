// bench check on traces whose guest sends fill their ring and another step follows. A
// KMCL client's send queues in the library and returns (the twin, the C Windows guest); a
// Linux driver's send waits for room (vmbus_sendpacket's -EAGAIN, then sleep and retry),
// so its step ends only once every packet is in the ring, the host reading meanwhile
// (`guestSends: 'wait'`, src/check/replay.ts). The model explains each guest's trace
// under its own behaviour and not under the other's, and a wait trace that loses,
// duplicates, or sends without room still fails.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { executeScenario } from '../../src/scenario/execute.ts';
import { checkTrace, guestSendsOf, type CheckResult, type GuestSends } from '../../src/check/replay.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { ScenarioSchema, toScenario, type Scenario } from '../../src/scenario/model.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** One 1-page channel: 60 Requests of 256 bytes fill the guest's ring 14 in, then `after`. */
const ringFull = (after: unknown[], count = 60, size = 256): Scenario =>
  toScenario(ScenarioSchema.parse({
    name: 'guest-ring-full-then',
    channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }],
    steps: [{ op: 'guest-send', count, size, mode: 'deferred' }, ...after],
  }));

const THEN_HOST_SEND = [{ op: 'host-send', count: 20, size: 200, hold: 1 }, { op: 'settle' }];
const THEN_SAVE = [{ op: 'save' }, { op: 'restore' }, { op: 'settle' }];
const THEN_GUEST_SEND = [{ op: 'notify', dir: 'g2h', count: 3, size: 64 }, { op: 'settle' }];

function trace(s: Scenario, devices: 'c-linux' | 'c-windows', seed = 1): TraceEvent[] {
  const sink = new MemorySink();
  const r = executeScenario(s, { seed, sink, devices });
  expect(r.hang).toBeNull();
  return sink.events as TraceEvent[];
}

function check(s: Scenario, events: readonly TraceEvent[], guestSends?: GuestSends): CheckResult {
  const source = new ArraySource(events.map((event, i) => ({ event, file: 'guest-ring-full.jsonl', line: i + 1 })));
  return checkTrace(s, source, guestSends === undefined ? {} : { guestSends });
}

const isGuestSend = (e: TraceEvent, tx: number) => e.side === 'guest' && e.ev === 'pkt.send' && e.tx === tx;

describe('which guest wrote the trace', () => {
  it('a run with the C Linux guest has a guest whose send waits; the twin, the C Windows guest and a loopback client queue', () => {
    expect(guestSendsOf({ devices: 'c-linux' })).toBe('wait');
    for (const devices of ['twin', 'c', 'c-windows'] as const) expect(guestSendsOf({ devices })).toBe('queue');
    // A loopback job's client is a KMCL client in the host, whatever the devices say.
    expect(guestSendsOf({ devices: 'c-linux', topology: 'loopback' })).toBe('queue');
  });
});

describe.skipIf(!toolchain)('bench check on a guest\'s ring-full send followed by another step', () => {
  it.each([
    ['a host send', THEN_HOST_SEND],
    ['a save and restore', THEN_SAVE],
    ['a guest notify', THEN_GUEST_SEND],
  ])('then %s, seeds 1-3: the C Linux guest\'s trace passes as a waiting guest\'s (its scenario says c-linux) and not as a queueing one\'s', (_n, after) => {
    const s = ringFull(after);
    let queueFailed = 0;
    for (const seed of [1, 2, 3]) {
      const events = trace(s, 'c-linux', seed);
      // The run did fill the ring: the host read a packet before the guest's last send.
      const lastSend = events.findIndex((e) => isGuestSend(e, 60));
      expect(events.slice(0, lastSend).some((e) => e.side === 'host' && e.ev === 'pkt.recv')).toBe(true);
      expect(check({ ...s, devices: 'c-linux' }, events), `seed ${seed}`).toMatchObject({ verdict: 'pass' });
      if (check(s, events, 'queue').verdict === 'diverge') queueFailed++;
    }
    // Where the next step is the host's or the bench's, the queueing model cannot explain it.
    if (after !== THEN_GUEST_SEND) expect(queueFailed).toBe(3);
  }, 120_000);

  it('the C Windows guest\'s trace (KMCL queues its sends) passes as a queueing guest\'s and fails as a waiting one\'s, at the first send the ring had no room for', () => {
    const s = ringFull(THEN_HOST_SEND);
    const events = trace(s, 'c-windows');
    expect(check({ ...s, devices: 'c-windows' }, events)).toMatchObject({ verdict: 'pass' });
    const r = check(s, events, 'wait');
    expect(r.verdict).toBe('diverge');
    if (r.verdict !== 'diverge') return;
    expect(r.firstUnexplained?.event).toMatchObject({ side: 'guest', ev: 'pkt.send', tx: 15 });
    expect(r.message).toMatch(/waiting for room/);
  });

  describe('a waiting guest\'s wrong trace still fails', () => {
    const s = ringFull(THEN_HOST_SEND);
    const good = trace(s, 'c-linux');
    const linux = { ...s, devices: 'c-linux' as const };

    it('a send the host never receives: lost', () => {
      const tx = 40;
      const lost = good.filter((e) => !('tx' in e && e.dir === 'g2h' && e.tx === tx && e.ev !== 'pkt.send'));
      const r = check(linux, lost);
      expect(r).toMatchObject({ verdict: 'diverge', class: 'lost' });
      if (r.verdict === 'diverge') expect(r.expected).toContain(`host pkt.recv ch=0 dir=g2h tx=${tx}`);
    });

    it('a send traced twice: duplicated', () => {
      const at = good.findIndex((e) => isGuestSend(e, 30));
      const twice = [...good.slice(0, at + 1), { ...good[at]!, seq: 0 }, ...good.slice(at + 1)].map((e, i) => ({ ...e, seq: i + 1 }));
      expect(check(linux, twice)).toMatchObject({ verdict: 'diverge', class: 'duplicated' });
    });

    it('a send resumed before the host freed room (the host reads nothing until after the next bench event): spurious, at the first send with no room', () => {
      const paused = ringFull([{ op: 'pause' }, { op: 'resume' }, { op: 'settle' }], 20);
      const events = trace(paused, 'c-linux');
      // The guest's 20 sends stay before the pause; everything else of the first segment
      // (the host's reads and completions, the guest's completions) moves after the resume.
      const pause = events.findIndex((e) => e.ev === 'vm.pause');
      const resume = events.findIndex((e) => e.ev === 'vm.resume');
      const keep = (e: TraceEvent) => e.side === 'bench' || e.ev === 'ch.state' || (e.side === 'guest' && e.ev === 'pkt.send');
      const moved = events.slice(0, pause).filter((e) => !keep(e));
      expect(moved.some((e) => e.side === 'host' && e.ev === 'pkt.recv')).toBe(true);
      const early = [...events.slice(0, pause).filter(keep), ...events.slice(pause, resume + 1), ...moved, ...events.slice(resume + 1)].map((e, i) => ({ ...e, seq: i + 1 }));
      const r = check({ ...paused, devices: 'c-linux' }, early);
      expect(r).toMatchObject({ verdict: 'diverge', class: 'spurious' });
      if (r.verdict === 'diverge') expect(r.firstUnexplained?.event).toMatchObject({ side: 'guest', ev: 'pkt.send', tx: 15 });
      // A queueing guest may do exactly this (14 in the ring, 6 in the library): which guest
      // wrote the trace decides.
      expect(check(paused, early, 'queue')).toMatchObject({ verdict: 'pass' });
      // And the run as it was passes.
      expect(check({ ...paused, devices: 'c-linux' }, events)).toMatchObject({ verdict: 'pass' });
    });
  });

  it('property: whatever the burst and the step after it, the C Linux guest\'s trace passes as a waiting guest\'s', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(128, 256, 500),
      fc.constantFrom(THEN_HOST_SEND, THEN_SAVE, THEN_GUEST_SEND),
      fc.integer({ min: 1, max: 1000 }),
      (count, size, after, seed) => {
        const s = ringFull(after, count, size);
        expect(check({ ...s, devices: 'c-linux' }, trace(s, 'c-linux', seed))).toMatchObject({ verdict: 'pass' });
      },
    ), { numRuns: 8 });
  }, 120_000);
});
