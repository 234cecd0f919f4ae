// The run-state key behind explore's walk: equal states key equal, and any change to
// what decides the rest of a run changes the key (else explore would pass a schedule it
// never ran that could have failed).
import { describe, expect, it } from 'vitest';
import { executeScenario, type SavePoint } from '../../src/scenario/execute.ts';
import { ScenarioSchema, toScenario } from '../../src/scenario/model.ts';
import { StateKey, IGNORED_FIELDS } from '../../src/scenario/state-key.ts';
import { PACKET_FIELDS } from '../../src/scenario/run-key.ts';
import type { GuestState } from '../../devices/sample/guest.ts';
import { HELD_TRANSACTION_FIELDS, HOST_TX_FIELDS, HOST_TX_UNKEYED_FIELDS, QUEUED_WRITE_FIELDS } from '../../devices/sample/guest-keys.ts';
import { StampingSink } from '../../src/trace/sink.ts';
import { createPacket } from '../../src/vmbus/packet.ts';
import { Channel } from '../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { fifo, fifoPush, fifoShift } from '../../src/vmbus/fifo.ts';
import { statusRuleOf, PropertyChecker } from '../../src/check/properties.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const keyOf = (v: unknown, opts?: ConstructorParameters<typeof StateKey>[0]): StateKey => {
  const k = new StateKey(opts);
  k.value(v);
  return k;
};

describe('StateKey', () => {
  it('keys equal data equal and different data different', () => {
    const a = { n: 1, s: 'x', b: new Uint8Array([1, 2]), m: new Map([[1, 'a']]), set: new Set([3]), arr: [null, undefined, true] };
    const b = { n: 1, s: 'x', b: new Uint8Array([1, 2]), m: new Map([[1, 'a']]), set: new Set([3]), arr: [null, undefined, true] };
    expect(keyOf(a).equals(keyOf(b))).toBe(true);
    for (const change of [{ n: 2 }, { s: 'y' }, { b: new Uint8Array([1, 3]) }, { m: new Map([[1, 'b']]) }, { set: new Set([4]) }, { arr: [null, undefined, false] }]) {
      expect(keyOf({ ...a, ...change }).equals(keyOf(a))).toBe(false);
    }
  });

  it('keeps a Map\'s order, which decides what is handled first', () => {
    expect(keyOf(new Map([[1, 1], [2, 2]])).equals(keyOf(new Map([[2, 2], [1, 1]])))).toBe(false);
  });

  it('keys a FIFO by what is still in it, however much of the consumed prefix the array holds', () => {
    const a = fifo<number>();
    for (const x of [1, 2, 3]) fifoPush(a, x);
    fifoShift(a);
    const b = fifo<number>();
    for (const x of [2, 3]) fifoPush(b, x);
    expect(keyOf(a).equals(keyOf(b))).toBe(true);
    fifoPush(b, 4);
    expect(keyOf(a).equals(keyOf(b))).toBe(false);
  });

  it('follows cycles through class instances and refuses one through plain data alone', () => {
    const ch = new Channel(true, 0, DEFAULT_CHOICES);
    const p = createPacket(ch, 1);
    ch.awaiting.set(1, p);
    expect(keyOf(ch).equals(keyOf(ch))).toBe(true);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => keyOf(loop)).toThrow(/deeper than any run state/);
  });

  it('leaves out the fields it lists, and nothing else', () => {
    expect(keyOf({ cachedRead: 1, x: 1 }).equals(keyOf({ cachedRead: 2, x: 1 }))).toBe(true);
    expect(keyOf({ cachedRed: 1, x: 1 }).equals(keyOf({ cachedRed: 2, x: 1 }))).toBe(false);
  });

  it('keys overridden fields with the given value, and owned objects with their own function', () => {
    const o = { interrupt: false, other: 1 };
    expect(keyOf(o, { overrides: new Map([[o, { interrupt: true }]]) }).equals(keyOf({ interrupt: true, other: 1 }))).toBe(true);
    const big = { items: [1, 2, 3] };
    const custom = new Map([[big, (k: StateKey) => k.num(42)]]);
    expect(keyOf({ big }, { custom }).equals(keyOf({ big: { items: [9] } }, { custom: new Map([[big, (k: StateKey) => k.num(42)]]) }))).toBe(false);
    expect([...keyOf({ big }, { custom }).numbers()]).toContain(42);
  });

  it('builds a key in an old one\'s buffers as it would build it afresh, and never writes into arrays it was lent', () => {
    const lent = new Uint8Array([1, 2, 3]);
    const old = new StateKey();
    old.dataRef(lent);
    old.value({ a: 1, b: new Uint8Array([9, 9, 9]) });
    const reused = old.reuse();
    reused.data(new Uint8Array([4, 5, 6]));
    reused.value({ a: 2, b: new Uint8Array([7, 7, 7]) });
    const fresh = new StateKey();
    fresh.data(new Uint8Array([4, 5, 6]));
    fresh.value({ a: 2, b: new Uint8Array([7, 7, 7]) });
    expect(reused.equals(fresh)).toBe(true);
    expect([...lent]).toEqual([1, 2, 3]);
  });

  it('names the field where two keys first differ when asked to', () => {
    const a = keyOf({ ring: { committed: 8, next: 8 } }, { explain: true });
    const b = keyOf({ ring: { committed: 8, next: 16 } }, { explain: true });
    expect(a.firstDifference(b)).toMatch(/ring\.next/);
    expect(a.firstDifference(a)).toBeNull();
  });
});

/**
 * A run stopped at its first save point where the guest has writes queued (its ring is
 * full) and holds a host transaction, and the host has packets awaiting completion:
 * every large collection of the key has something in it there.
 */
function atBusyPoint(f: (p: SavePoint, checker: PropertyChecker) => void): void {
  const s = toScenario(ScenarioSchema.parse({
    name: 'key', channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }],
    steps: [{ op: 'guest-send', count: 20, size: 600, mode: 'hold', hold: 3 }, { op: 'host-send', count: 30, size: 200, hold: 2 }],
  }));
  const checker = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  let done = false;
  executeScenario(s, {
    seed: 3, sink: new StampingSink('emulator', (e) => checker.onEvent(e)),
    atSavePoint: (_n, p) => {
      const g = (p.live.guest.state as GuestState).channels[0]!;
      const busy = g.queue.items.length > g.queue.head && g.held.items.length > g.held.head && (p.live.host?.vsps.get(0)?.channel.awaiting.size ?? 0) > 0;
      if (!busy) return 'go-on';
      f(p, checker);
      done = true;
      return 'stop';
    },
  });
  expect(done, 'the scenario reaches a busy save point').toBe(true);
}

describe('the key of a running scenario', () => {
  it('is the same when taken twice with nothing run between', () => {
    atBusyPoint((p) => expect(p.key().equals(p.key())).toBe(true));
  });

  it('changes with any part of the state that decides the rest of the run', () => {
    // Each mutation reaches into live objects the way a faulty save or restore would leave them.
    type Live = SavePoint['live'];
    const mutations: Array<[string, (x: Live) => void]> = [
      ['a host packet awaiting completion loses its hold time', (x) => {
        const p = [...x.host!.vsps.get(0)!.channel.awaiting.values()][0]!;
        (p.pointer as { hold: number }).hold++;
      }],
      ['a host packet awaiting completion is forgotten', (x) => {
        const ch = x.host!.vsps.get(0)!.channel;
        ch.awaiting.delete(ch.awaiting.ids()[0]!);
      }],
      ['the host channel forgets it may write', (x) => { x.host!.vsps.get(0)!.channel.writable = !x.host!.vsps.get(0)!.channel.writable; }],
      ['the host channel forgets it owes a ProcessingComplete', (x) => { x.host!.vsps.get(0)!.channel.outstanding++; }],
      ['the guest forgets a request it awaits', (x) => { (x.guest.state as GuestState).channels[0]!.awaiting.clear(); }],
      ['a held host transaction is due later at the guest', (x) => {
        const held = (x.guest.state as GuestState).channels[0]!.held;
        held.items[held.head]!.due++;
      }],
      ['a queued guest write comes back with a byte changed', (x) => {
        // A restore builds new records (sent messages are never written to in place).
        const q = (x.guest.state as GuestState).channels[0]!.queue;
        const w = q.items[q.head]!;
        const payload = w.payload.slice();
        payload[40]! ^= 1;
        q.items[q.head] = { ...w, payload };
      }],
      ['a byte of guest memory changes', (x) => { new Uint8Array(x.memory.buffer)[5000]! ^= 1; }],
    ];
    for (const [what, mutate] of mutations) {
      atBusyPoint((p) => {
        const before = p.key();
        mutate(p.live);
        expect(p.key().equals(before), what).toBe(false);
      });
    }
  });
});

describe('record kinds keyed by run-key.ts: every field is listed (so none drops out of the key)', () => {
  const fieldsOf = (o: object): string[] => Object.keys(o).filter((k) => !IGNORED_FIELDS.has(k) && k !== 'channel');

  it('VmbPacket', () => {
    expect(fieldsOf(createPacket(new Channel(true, 0, DEFAULT_CHOICES), 1)).sort()).toEqual([...PACKET_FIELDS].sort());
  });

  it('the VSP\'s transaction context, the guest\'s queued writes and held transactions', () => {
    atBusyPoint((p) => {
      const live = p.live;
      const pkt = [...live.host!.vsps.get(0)!.channel.awaiting.values()][0]!;
      expect(Object.keys(pkt.pointer as object).sort()).toEqual([...HOST_TX_FIELDS, ...HOST_TX_UNKEYED_FIELDS].sort());
      const g = (live.guest.state as GuestState).channels[0]!;
      const queued = g.queue.items[g.queue.head];
      const held = g.held.items[g.held.head];
      expect(queued, 'the scenario leaves guest writes queued at this point').toBeDefined();
      expect(held, 'the scenario leaves a host transaction held by the guest at this point').toBeDefined();
      expect(Object.keys(queued!).sort()).toEqual([...QUEUED_WRITE_FIELDS].sort());
      expect(Object.keys(held!).sort()).toEqual([...HELD_TRANSACTION_FIELDS].sort());
    });
  });
});
