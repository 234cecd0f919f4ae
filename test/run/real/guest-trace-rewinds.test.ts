// The guest's trace across checkpoint applies (guest-trace-rewinds.ts): a guest whose
// trace buffer goes back with each applied checkpoint still yields every line it wrote,
// once, in order, numbered 1..n, and the marks read after an apply land on that numbering.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestTraceRewinds } from '../../../src/run/real/guest-trace-rewinds.ts';

/** A guest's trace buffer: lines with its own seq; a checkpoint is a copy, an apply puts one back. */
class Guest {
  lines: Array<{ seq: number; id: number }> = [];
  private nextId = 0;
  write(n: number): void {
    for (let i = 0; i < n; i++) this.lines.push({ seq: this.lines.length + 1, id: this.nextId++ });
  }
  get seq(): number {
    return this.lines.length;
  }
  text(): string {
    return this.lines.map((l) => `{"v":1,"seq":${l.seq},"src":"hyperv","side":"guest","ev":"pkt.send","tx":${l.id}}\n`).join('');
  }
}

type Op = { op: 'write'; n: number } | { op: 'checkpoint' } | { op: 'apply'; which: number };

describe('GuestTraceRewinds', () => {
  it('without an apply, the final read is the trace as it is', () => {
    const r = new GuestTraceRewinds();
    const g = new Guest();
    g.write(3);
    expect(r.stitch(g.text())).toBe(g.text());
    expect(r.shift(3)).toBe(3);
  });

  it('keeps every line written, once, in order, numbered 1..n, whatever checkpoints are applied (property)', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('write' as const), n: fc.integer({ min: 0, max: 5 }) }),
      fc.constant({ op: 'checkpoint' as const }),
      fc.record({ op: fc.constant('apply' as const), which: fc.nat() }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const g = new Guest();
      const r = new GuestTraceRewinds();
      const checkpoints: Array<Array<{ seq: number; id: number }>> = [];
      const written: number[] = [];
      for (const o of ops) {
        if (o.op === 'write') {
          const before = g.lines.length;
          g.write(o.n);
          written.push(...g.lines.slice(before).map((l) => l.id));
        } else if (o.op === 'checkpoint') {
          checkpoints.push([...g.lines]);
        } else if (checkpoints.length > 0) {
          r.before(g.text(), g.seq);
          g.lines = [...checkpoints[o.which % checkpoints.length]!];
          r.after(g.seq);
        }
      }
      const stitched = r.stitch(g.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; tx: number });
      expect(stitched.map((l) => l.tx)).toEqual(written);
      expect(stitched.map((l) => l.seq)).toEqual(written.map((_, i) => i + 1));
      // The last mark (the guest's seq now) points at the last line written.
      expect(r.shift(g.seq)).toBe(written.length);
    }));
  });
});
