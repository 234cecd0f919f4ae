// The host's ch.rescind and ch.offer written into its trace by the job (host-inserts.ts):
// every VSP line is kept once and in order, each insert sits right after the VSP line the
// host had written when the bench asked, seq runs 1..n, and a host mark read after some
// inserts, shifted, counts exactly what had happened by then.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostInserts } from '../../../src/run/real/host-inserts.ts';

type Op = { op: 'write'; n: number } | { op: 'insert'; ev: 'ch.rescind' | 'ch.offer'; ch: number } | { op: 'mark' };

const vspLine = (seq: number) => `{"v":1,"seq":${seq},"src":"hyperv","side":"host","ev":"pkt.send","ch":0,"tx":${seq},"dir":"h2g"}`;

describe('HostInserts', () => {
  it('without an insert the trace is as the VSP wrote it', () => {
    const text = `${vspLine(1)}\n${vspLine(2)}\n`;
    expect(new HostInserts('hyperv').stitch(text)).toBe(text);
    expect(new HostInserts('hyperv').shift(2)).toBe(2);
  });

  it('puts an insert after the line the host was at, and one at seq 0 first', () => {
    const h = new HostInserts('hyperv');
    h.add(0, { ev: 'ch.offer', ch: 3 });
    h.add(1, { ev: 'ch.rescind', ch: 1 });
    const out = h.stitch(`${vspLine(1)}\n${vspLine(2)}\n`).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out.map((e) => [e.seq, e.ev, e.ch])).toEqual([[1, 'ch.offer', 3], [2, 'pkt.send', 0], [3, 'ch.rescind', 1], [4, 'pkt.send', 0]]);
    expect(out[0]).toEqual({ v: 1, seq: 1, src: 'hyperv', side: 'host', ev: 'ch.offer', ch: 3 });
  });

  it('Invariant: lines kept once in order, inserts in place, seq 1..n, and shifted marks count what had happened', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('write' as const), n: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ op: fc.constant('insert' as const), ev: fc.constantFrom('ch.rescind' as const, 'ch.offer' as const), ch: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ op: fc.constant('mark' as const) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const h = new HostInserts('hyperv');
      let seq = 0;
      /** what really happened, in order: a VSP line by its seq, or an insert */
      const happened: string[] = [];
      const marks: Array<{ shifted: number; count: number }> = [];
      for (const o of ops) {
        if (o.op === 'write') for (let i = 0; i < o.n; i++) happened.push(`vsp ${++seq}`);
        else if (o.op === 'insert') { h.add(seq, { ev: o.ev, ch: o.ch }); happened.push(`${o.ev} ${o.ch}`); }
        else marks.push({ shifted: h.shift(seq), count: happened.length });
      }
      const text = Array.from({ length: seq }, (_, i) => `${vspLine(i + 1)}\n`).join('');
      const out = h.stitch(text).split('\n').filter((l) => l).map((l) => JSON.parse(l) as { seq: number; ev: string; ch: number; tx?: number });
      expect(out.map((e) => (e.ev === 'pkt.send' ? `vsp ${e.tx}` : `${e.ev} ${e.ch}`))).toEqual(happened);
      expect(out.map((e) => e.seq)).toEqual(out.map((_, i) => i + 1));
      for (const m of marks) expect(m.shifted).toBe(m.count);
    }));
  });
});
