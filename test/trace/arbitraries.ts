// fast-check generators of valid trace events, shared by the trace tests.
import fc from 'fast-check';
import type { EventBody, EventName, TraceEvent } from '../../src/trace/schema.ts';
import { EVENT_SIDES } from '../../src/trace/schema.ts';
import { EVENT_FIELDS, type FieldKind } from '../../src/trace/validate.ts';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
/** Any Unicode text, so multi-byte UTF-8 and escapes cross chunk boundaries. */
const text = fc.string({ minLength: 1, maxLength: 40, unit: 'binary' });

const byKind: Record<Exclude<FieldKind, 'version' | 'side' | 'ev'>, fc.Arbitrary<unknown>> = {
  uint: fc.oneof(fc.nat(1000), fc.maxSafeNat()),
  int: fc.oneof(fc.integer(), fc.maxSafeInteger()),
  name: text,
  bool: fc.boolean(),
  dir: fc.constantFrom('g2h', 'h2g'),
  id: fc.oneof(fc.nat(64), fc.maxSafeNat()),
  // u64 ids: small ones, any safe one, and from 2^53 on the bigints a double would round.
  tx: fc.oneof(fc.nat(64), fc.maxSafeNat(), fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }), fc.constantFrom(2n ** 53n + 1n, 2n ** 64n - 1n)),
  status: hex(8),
  digest: hex(16),
};

/** A valid body of one given event name. */
export function bodyOf(ev: EventName): fc.Arbitrary<EventBody> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [field, kind] of EVENT_FIELDS[ev]) {
    fields[field] = byKind[kind as keyof typeof byKind];
  }
  return fc
    .record({ side: fc.constantFrom(...EVENT_SIDES[ev]), fields: fc.record(fields) })
    .map(({ side, fields: f }) => ({ ev, side, ...f }) as EventBody);
}

export const anyBody: fc.Arbitrary<EventBody> = fc.oneof(
  ...(Object.keys(EVENT_FIELDS) as EventName[]).map((ev) => bodyOf(ev)),
);

/** Events as a StampingSink would make them: seq strictly increasing, gaps allowed. */
export const anyTrace: fc.Arbitrary<TraceEvent[]> = fc
  .record({
    src: fc.oneof(fc.constantFrom('emulator', 'hyperv'), text),
    start: fc.nat(1000),
    items: fc.array(fc.tuple(anyBody, fc.integer({ min: 1, max: 3 })), { maxLength: 60 }),
  })
  .map(({ src, start, items }) => {
    let seq = start;
    return items.map(([body, gap]) => {
      seq += gap;
      return { v: 1, seq, src, ...body } as TraceEvent;
    });
  });

/** One valid sample of every event name (deterministic, for table tests). */
export function sampleOf(ev: EventName, seq = 1): TraceEvent {
  const sample: Record<FieldKind, unknown> = {
    version: 1,
    uint: 7,
    int: -3,
    name: 'n',
    bool: true,
    side: EVENT_SIDES[ev][0],
    ev,
    dir: 'g2h',
    id: 2,
    tx: 3,
    status: 'c0000184',
    digest: '0123456789abcdef',
  };
  const e: Record<string, unknown> = { v: 1, seq, src: 'emulator', side: EVENT_SIDES[ev][0], ev };
  for (const [field, kind] of EVENT_FIELDS[ev]) e[field] = sample[kind];
  return e as unknown as TraceEvent;
}
