// A C guest driver's snapshot (runtime-image.ts with the Linux shim's tables) is an exact
// copy: revived and snapshotted again it is the same image, byte for byte and table for
// table, wherever in a run it was taken; revived into the instance of a driver a restore
// replaced (reused in place) it does what a new instance and the original do; and a
// malformed image is refused as a RestoreError naming what is wrong, before anything is
// built, while any other change to it gives a driver that holds exactly what it says.
// The last two hold for the sample's C Windows guest too (its WDF and KMCL shims' tables
// beside the memory), whose revive goes through the same C guest base.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import sample from '../../../devices/sample/device.ts';
import type { EmulatorGuest, GuestDriver } from '../../../src/device-api/device-module.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';
import { liveRuns, runsOf, writeRuns, type MemoryRun } from '../../../src/devices/wasm/memory-runs.ts';
import type { Linear } from '../../../src/devices/wasm/linear.ts';
import type { PoolImage } from '../../../src/devices/wasm/pool.ts';
import type { CGuestState } from '../../../src/device-api/c-guest-base.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

type Os = 'linux' | 'windows';
/** The guest's channels (the Windows guest: one PnP device each). */
const CHANNELS = [0, 3];
const layout = () => CHANNELS.map((ch) => ({ ch, g2hPages: 8, h2gPages: 4 }));

/** A C guest of the sample on two channels, whose host side only swallows what it is sent (no host runs here). */
function guestOn(clock: { now: number }, os: Os = 'linux', side = sample.emulator!.cGuest!(os, { now: () => clock.now })): { side: EmulatorGuest; state: unknown; guest: GuestDriver; mem: GuestMemory } {
  const mem = new GuestMemory(layout());
  const rings = new Map(CHANNELS.map((ch) => [ch, mem.guestRings(ch)]));
  const state = side.newGuestState(CHANNELS, CHANNELS.map(() => 1));
  const guest = side.guest(state, rings, new MemorySink(), { interrupt: () => {}, writable: () => {} });
  guest.probe!();
  return { side, state, guest, mem };
}

/** A guest state's driver instance (c-guest-base.ts: the base's state holds it). */
const runtimeOf = (state: unknown): unknown => (state as CGuestState<{ rt: unknown }>).drv.rt;

type Img = { driver: { runtime: { memory: Uint8Array; size?: number; runs?: MemoryRun[]; pool: { live: unknown; top: number; spare: unknown; quarantine: unknown; qNext: unknown } }; linux: Record<string, unknown>; devices: unknown }; guestNow: number; kind: string };

/** An image's whole memory as bytes, and everything else beside it: two images hold the same driver when these are equal. */
function flat(img: Img): { memory: Buffer; rest: unknown } {
  const r = img.driver.runtime;
  const bytes = new Uint8Array(r.size ?? r.memory.length);
  bytes.set(r.memory);
  writeRuns(bytes, r.memory.length, r.runs ?? [], bytes.length, bytes.length);
  const { memory: _m, runs: _r, ...tables } = r;
  return { memory: Buffer.from(bytes), rest: { ...img, driver: { ...img.driver, runtime: tables } } };
}

const sendStep = fc.record({ ch: fc.constantFrom(0, 3), count: fc.integer({ min: 1, max: 4 }), size: fc.integer({ min: 24, max: 600 }), mode: fc.constantFrom('inline', 'deferred', 'hold') as fc.Arbitrary<'inline' | 'deferred' | 'hold'>, ms: fc.integer({ min: 0, max: 20 }) });
type SendStep = typeof sendStep extends fc.Arbitrary<infer T> ? T : never;

function drive(g: { guest: GuestDriver }, clock: { now: number }, steps: readonly SendStep[]): void {
  for (const st of steps) {
    g.guest.send(st.ch, 'request', st.count, st.size, st.mode, st.ms);
    clock.now += st.ms;
  }
}

/** A guest driver over a copy of `mem` (the restored VM's rings) writing into `sink`. */
function attach(side: EmulatorGuest, state: unknown, mem: GuestMemory, sink: MemorySink): { guest: GuestDriver; mem: GuestMemory } {
  const copy = new GuestMemory(layout(), mem.image());
  const rings = new Map(CHANNELS.map((ch) => [ch, copy.guestRings(ch)]));
  return { guest: side.guest(state, rings, sink, { interrupt: () => {}, writable: () => {} }), mem: copy };
}

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

  it('property: the runs a key or a snapshot takes without scanning the memory again are the memory, after a revive and after the driver ran', () => {
    const same = (mem: Linear): void => {
      const back = new Uint8Array(mem.size).fill(0x5a);
      writeRuns(back, 0, liveRuns(mem), back.length, back.length);
      expect(Buffer.compare(back, new Uint8Array(mem.memory.buffer))).toBe(0);
    };
    fc.assert(
      fc.property(fc.array(sendStep, { maxLength: 4 }), fc.array(sendStep, { minLength: 1, maxLength: 4 }), (before, after) => {
        const clock = { now: 0 };
        const g = guestOn(clock);
        drive(g, clock, before);
        const mem = (runtimeOf(g.state) as { mem: Linear }).mem;
        same(mem);
        const image = g.side.snapshotGuest(g.state, clock.now);
        const back = g.side.reviveGuest(image, clock.now);
        const revived = (runtimeOf(back) as { mem: Linear }).mem;
        // Revived: the image's own runs, not a scan; then the driver runs and they are worked out again.
        same(revived);
        const a = attach(g.side, back, g.mem, new MemorySink());
        drive(a, clock, after);
        same(revived);
        expect(liveRuns(revived)).toEqual(runsOf(new Uint8Array(revived.memory.buffer), true));
      }),
      { numRuns: 8 },
    );
  });

  it('reads an image whose pool tables are lists (a block per list), as images held them before columns', () => {
    const clock = { now: 0 };
    const g = guestOn(clock);
    drive(g, clock, [{ ch: 0, count: 3, size: 64, mode: 'hold', ms: 5 }, { ch: 3, count: 1, size: 200, mode: 'deferred', ms: 1 }]);
    const image = structuredClone(g.side.snapshotGuest(g.state, clock.now)) as Img;
    const pool = image.driver.runtime.pool as unknown as PoolImage;
    const rows = (a: Uint32Array, n: number): number[][] => Array.from({ length: a.length / n }, (_, i) => [...a.subarray(i * n, (i + 1) * n)]);
    expect(pool.live.length).toBeGreaterThan(0);
    const { sites: _s, ...rest } = pool;
    const lists = {
      ...rest,
      live: rows(pool.live, 5).map(([at, size, tag, owner, site]) => [at, size, tag, owner ? 'driver' : 'shim', site ? pool.sites[site - 1] : null]),
      quarantine: rows(pool.quarantine, 4).map(([used, at, size, tag]) => (used ? [at, size, tag] : null)),
      spare: pool.spare.map(([total, bases]) => [total, [...bases]]),
    };
    const old = structuredClone(image);
    (old.driver.runtime as { pool: unknown }).pool = lists;
    const again = g.side.snapshotGuest(g.side.reviveGuest(old, clock.now), clock.now) as Img;
    expect(flat(again).rest).toEqual(flat(image).rest);
    expect(Buffer.compare(flat(again).memory, flat(image).memory)).toBe(0);
  });

  // The C Linux and the C Windows guest revive alike (src/device-api/c-guest-base.ts).
  describe.each(['linux', 'windows'] as const)('of the C %s guest', (os) => {
    it('property: revived into the instance of a driver a restore replaced, it does what a new instance and the original do', () => {
      let reusedRuns = 0;
      fc.assert(
        fc.property(fc.array(sendStep, { maxLength: 4 }), fc.array(sendStep, { maxLength: 6 }), fc.array(sendStep, { minLength: 1, maxLength: 4 }), (before, other, after) => {
          const clock = { now: 0 };
          const g = guestOn(clock, os);
          drive(g, clock, before);
          const image = structuredClone(g.side.snapshotGuest(g.state, clock.now));
          // Another guest of the same run goes its own way, then a restore replaces it: its instance is the spare.
          const o = guestOn(clock, os, g.side);
          drive(o, { now: 0 }, other); // (the run's clock stays where the image was taken, for the original to compare with)
          const spareRt = runtimeOf(o.state);
          // Wasm memory never shrinks: the spare takes the image when its memory is no larger (the Windows guest's grows as the bench reads its trace).
          const fits = (spareRt as { mem: { size: number } }).mem.size <= flat(image as Img).memory.length;
          g.side.discardGuest!(o.state);
          const reused = g.side.reviveGuest(image, clock.now);
          expect(runtimeOf(reused) === spareRt).toBe(fits);
          if (fits) reusedRuns++;
          const fresh = sample.emulator!.cGuest!(os, { now: () => clock.now });
          const anew = fresh.reviveGuest(image, clock.now);
          expect(runtimeOf(anew)).not.toBe(spareRt);
          // The same steps on the original, the reused and the new instance: the same trace and the same driver after.
          const runs = [
            { side: g.side, state: g.state, sink: new MemorySink() },
            { side: g.side, state: reused, sink: new MemorySink() },
            { side: fresh, state: anew, sink: new MemorySink() },
          ].map((x) => {
            const a = attach(x.side, x.state, g.mem, x.sink);
            drive(a, { now: clock.now }, after);
            return { events: x.sink.events, image: flat(x.side.snapshotGuest(x.state, clock.now) as Img) };
          });
          expect(runs[0]!.events.length).toBeGreaterThan(0);
          for (const r of runs.slice(1)) {
            expect(r.events).toEqual(runs[0]!.events);
            expect(Buffer.compare(r.image.memory, runs[0]!.image.memory)).toBe(0);
            expect(r.image.rest).toEqual(runs[0]!.image.rest);
          }
          // The replaced guest's state no longer drives anything.
          expect(() => runtimeOf(o.state)).toThrow(/after a restore replaced it/);
        }),
        // The first: nothing before the save nor on the replaced guest, so the spare's memory fits.
        { numRuns: 8, examples: [[[], [], [{ ch: 0, count: 1, size: 64, mode: 'inline', ms: 0 }]]] },
      );
      // The reuse itself was tried, not only its refusal.
      expect(reusedRuns).toBeGreaterThan(0);
    });

    it('property: a changed byte or field of an image is refused as a RestoreError, or gives a driver that holds exactly what the image says', () => {
      const clock = { now: 0 };
      const g = guestOn(clock, os);
      g.guest.send(0, 'request', 3, 64, 'hold', 10);
      g.guest.send(3, 'request', 2, 200, 'deferred', 0);
      const taken = g.side.snapshotGuest(g.state, 0) as Img;
      /** Every place in the image that holds a value (not inside byte arrays), as a parent and a key. */
      const places = (root: unknown): Array<[Record<string | number, unknown>, string | number]> => {
        const out: Array<[Record<string | number, unknown>, string | number]> = [];
        const walk = (v: unknown): void => {
          if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return;
          for (const k of Object.keys(v)) {
            out.push([v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k]);
            walk((v as Record<string, unknown>)[k]);
          }
        };
        walk(root);
        return out;
      };
      const junk = fc.constantFrom<unknown>(-1, 0, 1, 7, 4096, 65536, 2 ** 32, 1.5, Number.NaN, null, undefined, 'x', true, [], {}, [0], [0, 0], new Uint8Array(3));
      const change = fc.oneof(
        fc.record({ kind: fc.constant('byte' as const), which: fc.nat(), at: fc.nat(), x: fc.integer({ min: 1, max: 255 }) }),
        fc.record({ kind: fc.constant('field' as const), which: fc.nat(), to: junk }),
      );
      fc.assert(
        fc.property(change, fc.boolean(), (c, withSpare) => {
          const img = structuredClone(taken);
          if (c.kind === 'byte') {
            const arrays = [img.driver.runtime.memory, ...(img.driver.runtime.runs ?? []).flatMap((r) => (r.length === 2 ? [r[1]] : []))].filter((a) => a.length > 0);
            const a = arrays[c.which % arrays.length]!;
            a[c.at % a.length]! ^= c.x;
          } else {
            const all = places(img);
            const [parent, key] = all[c.which % all.length]!;
            parent[key] = c.to;
          }
          if (withSpare) g.side.discardGuest!(g.side.reviveGuest(structuredClone(taken), 0));
          let st: unknown;
          try {
            st = g.side.reviveGuest(img, 1);
          } catch (e) {
            expect(e).toBeInstanceOf(RestoreError);
            return;
          }
          // Accepted: a driver whose memory is the image's byte for byte, and which is its own image again.
          const again = g.side.snapshotGuest(st, 1) as Img;
          expect(Buffer.compare(flat(again).memory, flat(img).memory)).toBe(0);
          const twice = g.side.snapshotGuest(g.side.reviveGuest(structuredClone(again), 1), 1) as Img;
          expect(Buffer.compare(flat(twice).memory, flat(again).memory)).toBe(0);
          expect(flat(twice).rest).toEqual(flat(again).rest);
        }),
        { numRuns: 100 },
      );
    }, 120_000);
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
    ['a pool block outside the heap', (i) => void (i.driver.runtime.pool.live = Uint32Array.of(...(i.driver.runtime.pool.live as Uint32Array), 8, 16, 0, 1, 0)), /pool\.live is not a list of blocks inside the heap/],
    ['a pool top off its 16-byte slots', (i) => void (i.driver.runtime.pool.top += 4), /pool\.top \d+ is off the heap's 16-byte slots/],
    ['a free block off its 16-byte slots', (i) => void (i.driver.runtime.pool.spare = [[48, Uint32Array.of(i.driver.runtime.pool.top - 52)]]), /pool\.spare is not a list of free blocks inside the heap, on its 16-byte slots/],
    ['a quarantine longer than the pool\'s ring', (i) => void (i.driver.runtime.pool.quarantine = new Uint32Array(257 * 4)), /pool\.quarantine has 257 slots, more than the pool's 256/],
    ['a quarantine slot past the ring', (i) => void (i.driver.runtime.pool.qNext = 256), /pool\.qNext is not a quarantine slot/],
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
