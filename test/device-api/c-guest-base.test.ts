// The C guest base (src/device-api/c-guest-base.ts), over a driver of a few fields rather
// than a compiled one (the C Linux and C Windows guests' own tests run it with theirs):
// a state's driver is loaded once and unusable once a restore replaced it; a revived guest's
// clock is behind the run's by the time the VM was away; an image with any field wrong is a
// RestoreError before anything is built, the replaced guest's driver kept for the next
// revive; that driver goes to exactly one revive; the VM face puts the driver's trace into
// the run's trace after every entry and its `begin` lines after the probe.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CGuestState, CVmGuestBase, cGuestSide, type CGuestControl } from '../../src/device-api/c-guest-base.ts';
import type { GuestRings, HostDoorbell } from '../../src/device-api/device-module.ts';
import { MemorySink, type TraceSink } from '../../src/trace/sink.ts';
import { RestoreError } from '../../src/vmbus/saved-state.ts';
import { toTxId } from '../../src/vmbus/tx-id.ts';

/** A driver: a counter, its clock, and the trace and refusals a test scripts. */
class FakeDriver {
  n = 0;
  trace = '';
  readonly now: () => number;
  /** the replaced driver whose instance this one was revived into */
  readonly revivedInto: FakeDriver | undefined;
  constructor(now: () => number, revivedInto?: FakeDriver) {
    this.now = now;
    this.revivedInto = revivedInto;
  }
}

const control: CGuestControl = {
  command: (step: { op: string }) => ({ line: `send ${step.op}` }),
  channelInstance: (ch: number) => `instance-${ch}`,
  begin: [{ to: 'guest', line: 'hello' }, { to: 'host', line: 'not mine' }],
} as unknown as CGuestControl;

class FakeFace extends CVmGuestBase<FakeDriver, CGuestState<FakeDriver>> {
  readonly lines: string[] = [];
  refuse = new Set<string>();
  protected readTrace(): string {
    const t = this.st.drv.trace;
    this.st.drv.trace = '';
    return t;
  }
  protected runLine(line: string): string | null {
    this.lines.push(line);
    this.st.drv.trace += `{"v":1,"seq":${this.lines.length},"src":"guest","ev":"cmd","line":"${line}"}\n`;
    return this.refuse.has(line) ? 'errno 22' : null;
  }
  probe(): void {
    this.begin();
  }
  signal(): void {}
  canFlush(): boolean { return false; }
  flushOne(): void {}
  canDeliver(): boolean { return false; }
  deliverOne(): void {}
  nextDue(): number | null { return null; }
  completeDue(): boolean { return false; }
  pending(): number { return this.st.drv.n; }
}

function side(clock: { now: number }, maxChannels?: number) {
  const built: FakeDriver[] = [];
  const s = cGuestSide<FakeDriver, CGuestState<FakeDriver>, { n: number }>({
    kind: 'c-fake',
    title: 'fake C guest driver',
    now: () => clock.now,
    ...(maxChannels !== undefined ? { maxChannels } : {}),
    state: (away, channels, probed) => new CGuestState(away, channels, probed),
    load: (now) => {
      const d = new FakeDriver(now);
      built.push(d);
      return d;
    },
    revive: (now, image, spare) => {
      const img = image as { n?: unknown };
      if (!Number.isSafeInteger(img?.n)) throw new RestoreError('bad-record', 'the driver image n is not a count');
      const d = new FakeDriver(now, spare);
      d.n = img.n as number;
      built.push(d);
      return d;
    },
    image: (drv) => ({ n: drv.n }),
    face: (st, rings, sink, host) => new FakeFace(st, rings, sink, host, control),
  });
  return { s, built };
}

const noHost: HostDoorbell = { interrupt: () => {}, writable: () => {} };
const noRings = new Map() as GuestRings;

describe('the C guest base', () => {
  it('a new state holds its channels ascending, its driver on the run\'s clock; more channels than the driver serves, or a first tx other than 1, are refused', () => {
    const clock = { now: 40 };
    const { s } = side(clock, 3);
    const st = s.newGuestState([5, 1, 3], [1, 1, 1].map(toTxId)) as CGuestState<FakeDriver>;
    expect(st.channels).toEqual([1, 3, 5]);
    expect(st.probed).toBe(false);
    expect(st.drv.now()).toBe(40);
    expect(() => s.newGuestState([0, 1, 2, 3], [1, 1, 1, 1].map(toTxId))).toThrow(/serves at most 3 channel/);
    expect(() => s.newGuestState([0, 1], [1, 2].map(toTxId))).toThrow(/channel 1 starts at 2/);
  });

  it('a driver is loaded once, and a discarded state\'s driver cannot be reached', () => {
    const { s } = side({ now: 0 });
    const st = s.newGuestState([0], [toTxId(1)]) as CGuestState<FakeDriver>;
    expect(() => st.load(new FakeDriver(() => 0))).toThrow(/set once/);
    s.discardGuest!(st);
    expect(() => st.drv).toThrow(/after a restore replaced it/);
    expect(() => new CGuestState<FakeDriver>(0, [0], false).drv).toThrow(/before its driver was loaded/);
  });

  it('property: a revived guest is the one saved, its clock behind the run\'s by the time the VM was away', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), fc.boolean(), (n, savedAt, away, probed) => {
      const clock = { now: savedAt };
      const { s } = side(clock);
      const st = s.newGuestState([2, 0], [1, 1].map(toTxId)) as CGuestState<FakeDriver>;
      st.drv.n = n;
      st.probed = probed;
      const image = structuredClone(s.snapshotGuest(st, clock.now));
      expect(image).toEqual({ kind: 'c-fake', driver: { n }, guestNow: savedAt, channels: [{ ch: 0 }, { ch: 2 }], probed });
      clock.now += away;
      const back = s.reviveGuest(image, clock.now) as CGuestState<FakeDriver>;
      expect(back.drv.n).toBe(n);
      expect(back.channels).toEqual([0, 2]);
      expect(back.probed).toBe(probed);
      expect(back.away).toBe(away);
      expect(back.drv.now()).toBe(savedAt);
      expect(s.snapshotGuest(back, clock.now)).toEqual(image);
    }));
  });

  it('property: an image with a field wrong is a RestoreError before anything is built, and the replaced guest\'s driver waits for the next revive', () => {
    const wrong = fc.constantFrom<unknown>(undefined, null, -1, 1e9, Number.NaN, 1.5, 'x', [], {}, [{ ch: 'x' }], [{ ch: -1 }], [{ ch: 256 }], [{ ch: 0 }, { ch: 1 }], true);
    fc.assert(fc.property(fc.constantFrom('kind', 'guestNow', 'channels', 'probed', 'driver'), wrong, (field, value) => {
      const clock = { now: 100 };
      const { s, built } = side(clock, 1);
      const old = s.newGuestState([0], [toTxId(1)]) as CGuestState<FakeDriver>;
      const spare = old.drv;
      const image = s.snapshotGuest(old, 50) as Record<string, unknown>;
      const bad = { ...image, [field]: value };
      const ok = (field === 'guestNow' && typeof value === 'number' && value >= 0 && value <= 100 && Number.isFinite(value))
        || (field === 'probed' && typeof value === 'boolean')
        || (field === 'channels' && JSON.stringify(value) === '[{"ch":0}]');
      fc.pre(!ok);
      s.discardGuest!(old);
      const before = built.length;
      expect(() => s.reviveGuest(bad, clock.now)).toThrow(RestoreError);
      expect(built.length).toBe(before);
      // The spare went to no one: the next good revive gets it, and the one after does not.
      const a = s.reviveGuest(image, clock.now) as CGuestState<FakeDriver>;
      expect(a.drv.revivedInto).toBe(spare);
      const b = s.reviveGuest(image, clock.now) as CGuestState<FakeDriver>;
      expect(b.drv.revivedInto).toBeUndefined();
    }));
  });

  it('an image whose channels repeat one, or name one no scenario has (0 to 255), is a RestoreError', () => {
    const { s } = side({ now: 10 });
    const image = s.snapshotGuest(s.newGuestState([2, 5], [1, 1].map(toTxId)), 10) as Record<string, unknown>;
    for (const channels of [[{ ch: 2 }, { ch: 2 }], [{ ch: 2 }, { ch: 256 }], [{ ch: -1 }]]) {
      expect(() => s.reviveGuest({ ...image, channels }, 10), JSON.stringify(channels)).toThrow(/channels are not a list of distinct channel ids/);
    }
    expect(s.reviveGuest(image, 10)).toBeInstanceOf(CGuestState);
  });

  it('the VM face puts the driver\'s trace into the run\'s trace after every entry (without its v, seq, src), sends the guest\'s begin lines after the probe, and names a refused line', () => {
    const { s } = side({ now: 0 });
    const st = s.newGuestState([0], [toTxId(1)]) as CGuestState<FakeDriver>;
    const sink = new MemorySink();
    const face = s.guest(st, noRings, sink as TraceSink, noHost) as FakeFace;
    face.probe();
    expect(st.probed).toBe(true);
    expect(face.lines).toEqual(['hello']);
    face.send(0, 'request', 1, 64, 'inline', 0);
    expect(sink.events.map((e) => (e as unknown as { line: string }).line)).toEqual(['hello', 'send guest-send']);
    expect(sink.events.every((e) => e.src === 'emulator')).toBe(true);
    face.refuse.add('send notify');
    expect(() => face.send(0, 'notify', 1, 64, 'inline', 0)).toThrow("the C guest driver refused 'send notify' with errno 22");
    // The refused line's trace still reached the run's trace.
    expect(sink.events).toHaveLength(3);
  });
});
