import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EVENT_SIDES, type EventName } from '../../src/trace/schema.ts';
import { checkEvent, COMMON_FIELDS, EVENT_FIELDS, explainEvent } from '../../src/trace/validate.ts';
import { anyBody, sampleOf } from './arbitraries.ts';

const EVENTS = Object.keys(EVENT_FIELDS) as EventName[];

describe('checkEvent', () => {
  it('has a field table for exactly the events the schema declares', () => {
    expect(new Set(EVENTS)).toEqual(new Set(Object.keys(EVENT_SIDES)));
  });

  it.each(EVENTS)('accepts a valid %s', (ev) => {
    expect(checkEvent(sampleOf(ev))).toBeUndefined();
  });

  it.each(EVENTS)('names each missing required field of %s', (ev) => {
    for (const [field] of [...COMMON_FIELDS, ...EVENT_FIELDS[ev]]) {
      const e = { ...sampleOf(ev) } as Record<string, unknown>;
      delete e[field];
      expect(checkEvent(e), field).toEqual({ field, message: 'missing field' });
    }
  });

  it('reports an unknown version as the field v, before anything else', () => {
    expect(checkEvent({ v: 2, seq: 'x' })).toMatchObject({ field: 'v', message: expect.stringMatching(/unknown trace version/) });
  });

  it('refuses an event from a side that does not write it', () => {
    expect(checkEvent({ ...sampleOf('pkt.save'), side: 'guest' })).toMatchObject({ field: 'side' });
    expect(checkEvent({ ...sampleOf('vm.save.begin'), side: 'host' })).toMatchObject({ field: 'side' });
  });

  it('refuses ill-typed fields by name', () => {
    const bad: [EventName, string, unknown][] = [
      ['pkt.send', 'tx', -1],
      ['pkt.send', 'tx', 1.5],
      ['pkt.send', 'tx', '0x10'],
      ['pkt.send', 'ch', 2 ** 53],
      ['pkt.send', 'dir', 'up'],
      ['pkt.send', 'wantCompletion', 'yes'],
      ['pkt.send', 'digest', '0123456789ABCDEF'],
      ['pkt.send', 'digest', '0123'],
      ['pkt.complete', 'status', '0xc0000184'],
      ['scenario.begin', 'name', ''],
      ['scenario.begin', 'seed', 1e300],
      ['ch.state', 'state', null],
    ];
    for (const [ev, field, value] of bad) {
      expect(checkEvent({ ...sampleOf(ev), [field]: value }), `${ev}.${field}=${String(value)}`).toMatchObject({ field });
    }
  });

  it('refuses lines that are not objects, without naming a field', () => {
    for (const v of [null, 1, 'x', [], [sampleOf('pkt.send')]]) {
      const p = checkEvent(v);
      expect(p?.message).toMatch(/must be a JSON object/);
      expect(p?.field).toBeUndefined();
    }
  });

  it('accepts fields it does not know (later versions may add them)', () => {
    expect(checkEvent({ ...sampleOf('pkt.recv'), cpu: 3, note: { any: 'thing' } })).toBeUndefined();
  });

  it('accepts string ids and upper-case digests only when reading a source trace', () => {
    const e = { ...sampleOf('pkt.send'), ch: '8d2f5c3a-71b4-4e0e-9a6d-2c1f0b7e5a91', tx: '0x1F', digest: '0123456789ABCDEF' };
    expect(checkEvent(e)).toMatchObject({ field: 'ch' });
    expect(checkEvent(e, { sourceIds: true })).toBeUndefined();
    expect(checkEvent({ ...e, tx: '' }, { sourceIds: true })).toMatchObject({ field: 'tx' });
  });

  it('fast path and table walker agree on a bench event\'s at-marks, and name the mark at fault', () => {
    const mark = fc.oneof(fc.nat(), fc.constantFrom(-1, 0.5, 2 ** 53, '3', null, true));
    const at = fc.oneof(fc.constant(undefined), fc.dictionary(fc.constantFrom('host', 'guest'), mark), fc.constantFrom(null, 7, [3]));
    fc.assert(
      fc.property(fc.constantFrom('bench.mark', 'vm.save.begin', 'pkt.recv') as fc.Arbitrary<EventName>, at, (ev, marks) => {
        const e: Record<string, unknown> = { ...sampleOf(ev), ...(marks === undefined ? {} : { at: marks }) };
        for (const sourceIds of [false, true]) expect(checkEvent(e, { sourceIds })).toEqual(explainEvent(e, { sourceIds }));
        // Only the bench's events carry marks; on another event `at` is a field it does not know.
        if (ev === 'pkt.recv') expect(checkEvent(e)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
    expect(explainEvent({ ...sampleOf('bench.mark'), at: { host: 3, guest: '4' } })).toMatchObject({ field: 'at.guest' });
  });

  it('fast path and table walker agree on random valid and damaged events, in both modes', () => {
    const damage = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom(null, -1, 0.5, '', 'x', true, 2 ** 53, '0123456789abcdef', '0123456789ABCDEF', 'C0000184', 'host', 'h2g', 'pkt.send', 1),
    );
    fc.assert(
      fc.property(anyBody, fc.nat(), fc.option(fc.tuple(fc.nat(20), damage)), (body, seq, hit) => {
        const e: Record<string, unknown> = { v: 1, seq, src: 'emulator', ...body };
        if (hit !== null) {
          const fields = [...COMMON_FIELDS, ...EVENT_FIELDS[body.ev]].map(([f]) => f);
          const field = fields[hit[0] % fields.length]!;
          if (hit[1] === undefined) delete e[field];
          else e[field] = hit[1];
        }
        for (const sourceIds of [false, true]) {
          expect(checkEvent(e, { sourceIds }) === undefined).toBe(explainEvent(e, { sourceIds }) === undefined);
        }
        if (hit === null) expect(checkEvent(e)).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });
});
