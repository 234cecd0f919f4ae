// A C guest driver's snapshot (runtime-image.ts with the Linux shim's tables) is an exact
// copy: revived and snapshotted again it is the same image, byte for byte and table for
// table, wherever in a run it was taken; and a malformed image is refused as a
// RestoreError naming what is wrong, before anything is built.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import sample from '../../../devices/sample/device.ts';
import type { EmulatorGuest, GuestDriver } from '../../../src/device-api/device-module.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** A C Linux guest on two channels whose host side only swallows what it is sent (no host runs here). */
function guestOn(clock: { now: number }): { side: EmulatorGuest; state: unknown; guest: GuestDriver; mem: GuestMemory } {
  const side = sample.emulator!.cGuest!('linux', { now: () => clock.now });
  const mem = new GuestMemory([{ ch: 0, g2hPages: 8, h2gPages: 4 }, { ch: 3, g2hPages: 8, h2gPages: 4 }]);
  const rings = new Map([0, 3].map((ch) => [ch, mem.guestRings(ch)]));
  const state = side.newGuestState([0, 3], [1, 1]);
  const guest = side.guest(state, rings, new MemorySink(), { interrupt: () => {}, writable: () => {} });
  guest.probe!();
  return { side, state, guest, mem };
}

type Img = { driver: { runtime: { memory: Uint8Array; pool: { live: unknown[] } }; linux: Record<string, unknown>; devices: unknown }; guestNow: number; kind: string };

describe.skipIf(!toolchain)('a C guest driver\'s image', () => {
  it('revived and taken again is the same image, wherever it was taken (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ch: fc.constantFrom(0, 3), count: fc.integer({ min: 1, max: 4 }), size: fc.integer({ min: 24, max: 600 }), mode: fc.constantFrom('inline', 'deferred', 'hold') as fc.Arbitrary<'inline' | 'deferred' | 'hold'>, ms: fc.integer({ min: 0, max: 20 }) }), { maxLength: 5 }),
        (steps) => {
          const clock = { now: 0 };
          const g = guestOn(clock);
          for (const st of steps) {
            g.guest.send(st.ch, 'request', st.count, st.size, st.mode, st.ms);
            clock.now += st.ms;
          }
          const image = g.side.snapshotGuest(g.state, clock.now);
          clock.now += 7; // the VM stays saved a while
          const back = g.side.reviveGuest(image, clock.now);
          const again = g.side.snapshotGuest(back, clock.now) as Img;
          const first = image as Img;
          // Equal (the memory compared as bytes, the rest as data), and the guest's clock did not move while it was saved.
          expect(Buffer.compare(again.driver.runtime.memory, first.driver.runtime.memory)).toBe(0);
          const tables = (i: Img) => ({ ...i, driver: { ...i.driver, runtime: { ...i.driver.runtime, memory: i.driver.runtime.memory.length } } });
          expect(tables(again)).toEqual(tables(first));
          expect(again.guestNow).toBe(first.guestNow);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('a revived driver goes on from where it was: its next Request is numbered after the last one sent before the save', () => {
    const clock = { now: 0 };
    const g = guestOn(clock);
    g.guest.send(0, 'request', 3, 64, 'inline', 0);
    const image = g.side.snapshotGuest(g.state, 0);
    g.guest.send(0, 'request', 2, 64, 'inline', 0); // after the save: lost with the VM that goes on unsaved
    const sink = new MemorySink();
    const back = g.side.reviveGuest(image, 5);
    const guest = g.side.guest(back, new Map([0, 3].map((ch) => [ch, g.mem.guestRings(ch)])), sink, { interrupt: () => {}, writable: () => {} });
    guest.send(0, 'request', 1, 64, 'inline', 0);
    expect(sink.events.map((e) => [e.ev, (e as { tx?: number }).tx])).toEqual([['pkt.send', 4]]);
    expect(guest.pending()).toBe(4);
  });

  const cases: Array<[string, (img: Img) => void, RegExp]> = [
    ['another kind', (i) => void (i.kind = 'twin'), /is not a C Linux guest driver's/],
    ['a clock in the future', (i) => void (i.guestNow = 1e12), /clock 1000000000000 is not a time before now/],
    ['memory that is not bytes', (i) => void ((i.driver.runtime as Record<string, unknown>).memory = [1, 2, 3]), /memory is not bytes/],
    ['memory smaller than the module\'s', (i) => void ((i.driver.runtime as { size?: number }).size = 65536), /smaller than the module's own/],
    ['a pool block outside the heap', (i) => void i.driver.runtime.pool.live.push([8, 16, 0, 'driver', null]), /pool\.live is not a list of blocks inside the heap/],
    ['delayed work due at NaN', (i) => void ((i.driver.linux as { works: unknown[] }).works = [[64, 1, Number.NaN]]), /linux\.works is not a list/],
    ['a channel twice', (i) => void (i.driver.linux as { channels: unknown[] }).channels.push({ ...(i.driver.linux as { channels: object[] }).channels[0] }), /linux\.channels\[2\]\.id 0 is there twice/],
    ['a device of a channel it does not have', (i) => void (i.driver.devices = [[9, 64]]), /names channel 9/],
  ];

  it.each(cases)('is refused with a RestoreError naming the field: %s', (_what, spoil, message) => {
    const clock = { now: 0 };
    const g = guestOn(clock);
    g.guest.send(0, 'request', 2, 64, 'hold', 10);
    const image = structuredClone(g.side.snapshotGuest(g.state, 0)) as Img;
    spoil(image);
    let err: unknown;
    try {
      g.side.reviveGuest(image, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as Error).message).toMatch(message);
  });
});
