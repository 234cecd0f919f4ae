// TraceLogging on the emulator: a TraceLoggingWrite's field descriptors (the stand-in
// TraceLoggingProvider.h's struct _TlgStandInField array) become one event of the run's
// trace with the fields' names, values and order (a hex field as 16 or 8 lowercase
// digits); the driver's seq orders events and is not copied. Driven here through the import itself over a memory laid out as the
// driver's; test/devices/wasm/c-vsp.test.ts and c-vs-twin.test.ts run the real drivers.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Linear } from '../../../src/devices/wasm/linear.ts';
import type { DriverRuntime } from '../../../src/devices/wasm/runtime.ts';
import { FIELD_BYTES, FieldKind, TraceShim } from '../../../src/devices/wasm/trace-shim.ts';
import { DriverViolation } from '../../../src/devices/wasm/violations.ts';

type Field =
  | { kind: 'u64' | 'hex64'; name: string; value: bigint }
  | { kind: 'u32' | 'hex32'; name: string; value: number }
  | { kind: 'str'; name: string; value: string }
  | { kind: 'bool'; name: string; value: number };

/** A driver memory with a bump allocator for strings and descriptor arrays. */
function driver() {
  const mem = new Linear(new WebAssembly.Memory({ initial: 1 }));
  const rt = { mem, afterEntry: [] as Array<() => void> } as unknown as DriverRuntime;
  const events: Array<Record<string, unknown>> = [];
  const shim = new TraceShim(rt, { emit: (e) => void events.push(e as unknown as Record<string, unknown>) }, 'host');
  const write = shim.imports().env!._TlgStandInWrite! as (p: number, name: number, fields: number, count: number) => void;
  let top = 1024;
  const literals = new Map<string, number>();
  const str = (s: string, fresh = false): number => {
    if (!fresh && literals.has(s)) return literals.get(s)!;
    const at = top;
    mem.write(at, new Uint8Array([...Buffer.from(s, 'utf8'), 0]));
    top = (top + s.length + 8) & ~7;
    if (!fresh) literals.set(s, at);
    return at;
  };
  /** Lays the descriptors out as the macros do and makes the call. */
  const trace = (ev: string, fields: Field[], at = -1): void => {
    const base = at >= 0 ? at : (top = (top + 7) & ~7);
    if (at < 0) top += fields.length * FIELD_BYTES;
    const dv = new DataView(mem.memory.buffer);
    fields.forEach((f, i) => {
      const d = base + i * FIELD_BYTES;
      const kind = { u64: FieldKind.UInt64, u32: FieldKind.UInt32, str: FieldKind.String, bool: FieldKind.Boolean, hex64: FieldKind.HexUInt64, hex32: FieldKind.HexUInt32 }[f.kind];
      dv.setUint32(d, kind, true);
      dv.setUint32(d + 4, str(f.name), true);
      dv.setBigUint64(d + 8, 0xa5a5a5a5a5a5a5a5n, true); // what the union's other bytes may hold
      if (typeof f.value === 'bigint') dv.setBigUint64(d + 8, f.value, true);
      else if (typeof f.value === 'string') dv.setUint32(d + 8, str(f.value, true), true);
      else if (f.kind === 'bool') dv.setUint8(d + 8, f.value);
      else dv.setUint32(d + 8, f.value, true);
    });
    write(0, str(ev), base, fields.length);
  };
  return { mem, shim, rt, events, trace, write, str };
}

const rule = (fn: () => void): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverViolation) return e.report.rule;
    throw e;
  }
  return 'none';
};

describe('the TraceLogging shim', () => {
  it('makes one event of a write: its name, its fields in order, seq left out', () => {
    const d = driver();
    d.trace('pkt.recv', [
      { kind: 'u64', name: 'seq', value: 1n },
      { kind: 'u32', name: 'ch', value: 7 },
      { kind: 'u64', name: 'tx', value: 0xffff_ffff_ffff_ffffn },
      { kind: 'str', name: 'dir', value: 'g2h' },
      { kind: 'bool', name: 'wantCompletion', value: 1 },
      { kind: 'str', name: 'digest', value: '0123456789abcdef' },
    ]);
    expect(d.events).toEqual([{ side: 'host', ev: 'pkt.recv', ch: 7, tx: Number(0xffff_ffff_ffff_ffffn), dir: 'g2h', wantCompletion: true, digest: '0123456789abcdef' }]);
    expect(Object.keys(d.events[0]!)).toEqual(['side', 'ev', 'ch', 'tx', 'dir', 'wantCompletion', 'digest']);
  });

  it('writes a hex field (TraceLoggingHexUInt64 / HexUInt32: a digest, a status) as the converter does, 16 or 8 lowercase digits', () => {
    const d = driver();
    const complete = (digest: bigint, status: number) => d.trace('pkt.complete', [
      { kind: 'hex32', name: 'status', value: status },
      { kind: 'hex64', name: 'digest', value: digest },
    ]);
    complete(0x0123456789abcdefn, 0);
    complete(0xfedcba9876543210n, 0xc0000001);
    complete(0x5n, 0xc0000001);
    expect(d.events.map((e) => [e.status, e.digest])).toEqual([
      ['00000000', '0123456789abcdef'],
      ['c0000001', 'fedcba9876543210'],
      ['c0000001', '0000000000000005'],
    ]);
  });

  it('holds an event until every lower seq is written, and passes on the rest when the driver returns', () => {
    const d = driver();
    const ev = (seq: bigint, tx: number) => d.trace('pkt.send', [{ kind: 'u64', name: 'seq', value: seq }, { kind: 'u32', name: 'tx', value: tx }]);
    ev(2n, 20);
    expect(d.events).toEqual([]);
    ev(1n, 10);
    ev(5n, 50);
    expect(d.events.map((e) => e.tx)).toEqual([10, 20]);
    expect(d.shim.waitingEvents).toBe(1);
    d.shim.flush();
    expect(d.events.map((e) => e.tx)).toEqual([10, 20, 50]);
  });

  it('reads the fields again when a write with the same event name has others (another call site)', () => {
    const d = driver();
    d.trace('ch.state', [{ kind: 'u32', name: 'ch', value: 1 }, { kind: 'str', name: 'state', value: 'opened' }]);
    d.trace('ch.state', [{ kind: 'u32', name: 'ch', value: 2 }]);
    d.trace('ch.state', [{ kind: 'str', name: 'state', value: 'closed' }, { kind: 'u32', name: 'ch', value: 3 }]);
    expect(d.events).toEqual([
      { side: 'host', ev: 'ch.state', ch: 1, state: 'opened' },
      { side: 'host', ev: 'ch.state', ch: 2 },
      { side: 'host', ev: 'ch.state', state: 'closed', ch: 3 },
    ]);
  });

  it('names descriptors that are not the stand-in header\'s as trace.misuse', () => {
    const d = driver();
    const end = d.mem.bytes.length;
    expect(rule(() => d.write(0, d.str('x'), end - 8, 1))).toBe('trace.misuse');
    expect(rule(() => d.write(0, d.str('x'), 4100, 1))).toBe('trace.misuse'); // not aligned as the struct is
    new DataView(d.mem.memory.buffer).setUint32(8192, 9, true);
    expect(rule(() => d.write(0, d.str('x'), 8192, 1))).toBe('trace.misuse');
    // A name an event object cannot have as a field (it would set its prototype).
    expect(rule(() => d.trace('x', [{ kind: 'u32', name: '__proto__', value: 1 }]))).toBe('trace.misuse');
    expect(d.events).toEqual([]);
  });

  it('gives every field the value a field-by-field decoding gives, for any fields (property)', () => {
    // seq: the ordering test above; side and ev as field names replace the shim's own.
    const name = fc.constantFrom('a', 'tx', 'len', 'digest', 'status', 'ch', 'side', 'ev', 'a b', '"q"');
    const field: fc.Arbitrary<Field> = fc.oneof(
      fc.record({ kind: fc.constant('u64' as const), name, value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
      fc.record({ kind: fc.constant('u32' as const), name, value: fc.nat({ max: 0xffff_ffff }) }),
      fc.record({ kind: fc.constant('str' as const), name, value: fc.string({ maxLength: 20 }) }),
      fc.record({ kind: fc.constant('bool' as const), name, value: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('hex64' as const), name, value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
      fc.record({ kind: fc.constant('hex32' as const), name, value: fc.nat({ max: 0xffff_ffff }) }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(field, { maxLength: 6 }), { minLength: 1, maxLength: 5 }), (writes) => {
        const d = driver();
        for (const fields of writes) d.trace('e', fields);
        const expected = writes.map((fields) => {
          const e: Record<string, unknown> = { side: 'host', ev: 'e' };
          for (const f of fields) {
            e[f.name] =
              f.kind === 'u64' ? Number(f.value)
              : f.kind === 'bool' ? f.value !== 0
              : f.kind === 'hex64' ? f.value.toString(16).padStart(16, '0')
              : f.kind === 'hex32' ? f.value.toString(16).padStart(8, '0')
              : f.value;
          }
          return e;
        });
        expect(d.events).toEqual(expected);
      }),
    );
  });
});
