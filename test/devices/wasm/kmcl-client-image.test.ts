// A Windows guest driver's KMCL client objects as guest memory (kmcl-client-image.ts):
// revived and taken again, the image is the same, wherever in a run it was taken (the
// client channel's state, its packets awaiting completions and those in the library's
// queue included); the revived client goes on where it was; and a malformed image is a
// RestoreError naming the field, before anything is built.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';
import { CH, revived, tables, windowsGuestOn, type WinImg } from './support/windows-vm-guest.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const step = fc.record({
  kind: fc.constantFrom('request', 'notify') as fc.Arbitrary<'request' | 'notify'>,
  count: fc.integer({ min: 1, max: 6 }),
  size: fc.integer({ min: 24, max: 900 }),
  mode: fc.constantFrom('inline', 'deferred', 'hold') as fc.Arbitrary<'inline' | 'deferred' | 'hold'>,
  ms: fc.integer({ min: 0, max: 12 }),
});

describe.skipIf(!toolchain)('a C Windows guest driver\'s KMCL client image', () => {
  it('revived and taken again is the same image, wherever it was taken (property)', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 5 }), (steps) => {
        const clock = { now: 0 };
        const g = windowsGuestOn(clock);
        for (const st of steps) {
          g.guest.send(CH, st.kind, st.count, st.size, st.mode, st.ms);
          clock.now += st.ms;
        }
        const first = g.side.snapshotGuest(g.state, clock.now) as WinImg;
        clock.now += 9; // the VM stays saved a while
        const back = revived(g, first, clock.now);
        const again = g.side.snapshotGuest(back.state, clock.now) as WinImg;
        expect(Buffer.compare(again.driver.runtime.memory, first.driver.runtime.memory)).toBe(0);
        expect(tables(again)).toEqual(tables(first));
        expect(again.guestNow).toBe(first.guestNow);
      }),
      { numRuns: 10 },
    );
  });

  it('the revived client goes on where it was: its queued sends reach the ring, and its next Request is numbered after the last', () => {
    const clock = { now: 0 };
    // One ring page: 12 Requests of 600 bytes do not fit, KMCL queues the rest.
    const g = windowsGuestOn(clock, 1);
    g.guest.send(CH, 'request', 12, 600, 'inline', 0);
    const img = g.side.snapshotGuest(g.state, clock.now) as WinImg;
    const chan = img.driver.kmcl.channels[0]!;
    expect((chan.queue as unknown[]).length).toBeGreaterThan(0);
    expect((chan.awaiting as unknown[]).length).toBeGreaterThan(0);
    const back = revived(g, img, clock.now);
    // The host drained nothing: the queue waits for room, as before the save.
    expect(back.guest.canFlush(CH)).toBe(false);
    expect(back.guest.pending()).toBe(g.guest.pending());
    back.guest.send(CH, 'notify', 1, 64, 'inline', 0);
    const sends = back.sink.events.filter((e) => e.ev === 'pkt.send');
    expect(sends.map((e) => (e as { tx: number }).tx)).toEqual([13]);
  });

  it('refuses a malformed image as a RestoreError naming the field, before anything is built', () => {
    const clock = { now: 0 };
    const g = windowsGuestOn(clock, 1);
    g.guest.send(CH, 'request', 12, 600, 'inline', 0);
    const good = g.side.snapshotGuest(g.state, clock.now) as WinImg;
    const cases: Array<[string, (i: WinImg) => void, RegExp]> = [
      ['an awaiting packet the image lacks', (i) => void ((i.driver.kmcl.channels[0]!.awaiting as Array<[number, number]>)[0]![1] = 0x7fff_0000), /kmcl\.channels\[0\]\.awaiting names packet/],
      ['an awaiting packet under another trans id than its own', (i) => void ((i.driver.kmcl.channels[0]!.awaiting as Array<[number, number]>)[0]![0] = 7000), /kmcl\.channels\[0\]\.awaiting holds packet 0x[0-9a-f]+ under trans id 7000, but the packet's is 1/],
      ['a packet in no known state', (i) => void (i.driver.kmcl.packets[0]!.state = 'lost'), /kmcl\.packets\[0\]/],
      ['a channel state that is none', (i) => void ((i.driver.kmcl.channels[0]!.internals as Record<string, unknown>).state = { conn: 'ajar' }), /kmcl\.channels\[0\]\.internals\.state/],
      ['a queued send that is neither packet nor completion', (i) => void ((i.driver.kmcl.channels[0]!.queue as unknown[])[0] = { what: 1 }), /kmcl\.channels\[0\]\.queue/],
      ['no kmcl record', (i) => void ((i.driver as Record<string, unknown>).kmcl = 7), /kmcl is not a record/],
    ];
    for (const [what, spoil, message] of cases) {
      const bad = structuredClone(good);
      spoil(bad);
      let err: unknown;
      try {
        g.side.reviveGuest(bad, clock.now);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(RestoreError);
      expect((err as Error).message, what).toMatch(message);
    }
  });
});
