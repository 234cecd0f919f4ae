// The control-language shape the sample and blockq share (src/device-api/control-lines.ts):
// a traffic step's line carries exactly the step's numbers, the VSP's channel commands,
// counters read back whatever else a driver prints, and instance GUIDs that give each
// channel number its own id, ending in the number.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MODE_NUMBER, channelCommand, instanceGuid, parseCounters, trafficCommand } from '../../src/device-api/control-lines.ts';
import type { TrafficStep } from '../../src/device-api/device-module.ts';

const VERBS = { request: 'ask', transaction: 'tell', notify: 'ping' };
const uint = fc.integer({ min: 0, max: 0xffff });

const step: fc.Arbitrary<TrafficStep> = fc.oneof(
  fc.record({ op: fc.constant('guest-send' as const), channel: uint, count: uint, size: uint, mode: fc.constantFrom('inline' as const, 'deferred' as const, 'hold' as const), hold: uint }),
  fc.record({ op: fc.constant('host-send' as const), channel: uint, count: uint, size: uint, hold: uint }),
  fc.record({ op: fc.constant('notify' as const), channel: uint, dir: fc.constantFrom('g2h' as const, 'h2g' as const), count: uint, size: uint }),
);

describe('trafficCommand', () => {
  it('property: the line is the device\'s verb and the step\'s numbers, to the side that sends', () => {
    fc.assert(fc.property(step, (s) => {
      const { to, line } = trafficCommand(s, VERBS);
      const words = line.split(' ');
      expect(words.at(-1)).toBe(`ch=${s.channel}`);
      const nums = words.slice(1, -1).map(Number);
      switch (s.op) {
        case 'guest-send':
          expect([to, words[0]]).toEqual(['guest', 'ask']);
          expect(nums).toEqual([s.count, s.size, MODE_NUMBER[s.mode], s.mode === 'hold' ? s.hold : 0]);
          break;
        case 'host-send':
          expect([to, words[0]]).toEqual(['vsp', 'tell']);
          expect(nums).toEqual([s.count, s.size, s.hold]);
          break;
        case 'notify':
          expect([to, words[0]]).toEqual([s.dir === 'g2h' ? 'guest' : 'vsp', 'ping']);
          expect(nums).toEqual([s.count, s.size]);
      }
    }));
  });
});

describe('channelCommand', () => {
  it('writes an open with its flags, and every other operation as OP ch=N', () => {
    expect(channelCommand({ op: 'open', ch: 3, instance: 'g', ringPages: 2, loopback: false })).toBe('open 3 g ring-pages=2');
    expect(channelCommand({ op: 'open', ch: 3, instance: 'g', ringPages: 2, loopback: true, forceNewChannel: true })).toBe('open 3 g loopback ring-pages=2 force-new-channel');
    expect(channelCommand({ op: 'discard', ch: 9 })).toBe('discard ch=9');
  });
});

describe('parseCounters', () => {
  it('property: reads back each channel\'s sent and completed, and the first trace_seq, whatever else the driver prints', () => {
    const channel = fc.record({ sent: uint, completed: uint, other: uint, named: fc.boolean() });
    fc.assert(fc.property(fc.dictionary(uint.map(String), channel), uint, uint, (chans, seq, later) => {
      const lines = [`trace_seq=${seq} trace_dropped=0`, 'a line of text: no fields'];
      for (const [ch, c] of Object.entries(chans)) {
        // Fields in either order, one the parser is not asked for, and sent left out when not `named`.
        const fields = [`done=${c.completed}`, `other_thing=${c.other}`, ...(c.named ? [`out=${c.sent}`] : [])];
        lines.push(`ch=${ch} ${(c.other % 2 ? fields.reverse() : fields).join(' ')} trace_seq=${later}`);
      }
      const r = parseCounters(lines, { sent: 'out', completed: 'done' });
      expect(r.traceSeq).toBe(seq);
      expect(r.channels).toEqual(new Map(Object.entries(chans).map(([ch, c]) => [Number(ch), { sent: c.named ? c.sent : 0, completed: c.completed }])));
    }));
    expect(parseCounters(['nothing here'], { sent: 'a', completed: 'b' })).toEqual({ traceSeq: undefined, channels: new Map() });
  });
});

describe('instanceGuid', () => {
  // Invariant (instanceGuid): one-to-one on the numbers that fit, each ending in its number.
  it('property: gives each channel number that fits its own id, the number in its last digits', () => {
    fc.assert(fc.property(fc.constantFrom('8d2f5c3a-71b4-4e0e-9a6d-', '5b1e7a20-3c9d-4f61-8a0b-7e44'), uint, uint, (prefix, a, b) => {
      const ga = instanceGuid(prefix, a);
      expect(ga).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(ga.startsWith(prefix)).toBe(true);
      expect(parseInt(ga.slice(prefix.length), 16)).toBe(a);
      expect(ga === instanceGuid(prefix, b)).toBe(a === b);
    }));
  });

  it('refuses a number the prefix leaves no room for, and one that is not a channel number', () => {
    expect(() => instanceGuid('5b1e7a20-3c9d-4f61-8a0b-7e44', 0x1_0000_0000)).toThrow(/does not fit the 8 hex digits/);
    expect(instanceGuid('5b1e7a20-3c9d-4f61-8a0b-7e44', 0xffff_ffff)).toBe('5b1e7a20-3c9d-4f61-8a0b-7e44ffffffff');
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => instanceGuid('5b1e7a20-3c9d-4f61-8a0b-7e44', bad)).toThrow();
  });
});
