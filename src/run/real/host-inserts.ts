// The host's `ch.rescind` and `ch.offer` on a real lab (lab/drivers/PROTOCOL.md "Rescind
// and re-offer"). In the model they are the host platform's events, written when the
// host revokes a channel instance and offers the next; on the emulator the emulated host
// writes them (src/scenario/host.ts). On a real lab the bench is the one that asks the
// VSP to rescind (`rescind ch=N`) and to offer the new instance (`open`), and no driver
// traces either. So the job writes them into the host's trace itself, where they happened
// in the host's order: right after the last event the VSP had written when the bench
// asked (its counters' trace seq read just before the command), so that what the VSP
// writes for the rescind (its pkt.cancel) comes after `ch.rescind`, and what it writes at
// the offer after `ch.offer`.
//
// The host's file is then renumbered, and every bench mark of the host read after an
// insert is shifted past it (`shift`), as guest-trace-rewinds.ts does for the guest.
//
// Invariant: stitch(trace) holds every line of `trace` once, in order, plus each insert
// right after the line whose seq it was added after (inserts at one seq in the order
// added), with seq 1, 2, 3...; and a host mark read after k inserts, shifted, counts
// exactly the stitched lines up to the raw mark's line and those k inserts
// (test/run/real/host-inserts.test.ts).

const SEQ = /"seq":(\d+)/;

export interface HostInsert {
  ev: 'ch.rescind' | 'ch.offer';
  ch: number;
}

export class HostInserts {
  private readonly inserts: Array<{ after: number; body: HostInsert }> = [];
  private readonly src: string;

  constructor(src: string) {
    this.src = src;
  }

  /** `body` happened after the host's event `after` (its trace seq when the bench asked). */
  add(after: number, body: HostInsert): void {
    this.inserts.push({ after, body });
  }

  /** A host mark read now, on the stitched numbering: past every insert made so far. */
  shift(mark: number): number {
    return mark + this.inserts.length;
  }

  /** The host's trace with the inserts in place and seq renumbered from 1. */
  stitch(trace: string): string {
    if (this.inserts.length === 0) return trace;
    const pending = [...this.inserts];
    const out: string[] = [];
    const line = (b: HostInsert) => JSON.stringify({ v: 1, seq: 0, src: this.src, side: 'host', ev: b.ev, ch: b.ch });
    const flush = (upTo: number) => {
      while (pending.length > 0 && pending[0]!.after <= upTo) out.push(line(pending.shift()!.body));
    };
    flush(0);
    for (const l of trace.split('\n')) {
      if (!l.trim()) continue;
      const m = SEQ.exec(l);
      // A line without a seq is the reader's to refuse, in its place.
      const seq = m ? Number(m[1]) : null;
      if (seq !== null) flush(seq - 1);
      out.push(l);
      if (seq !== null) flush(seq);
    }
    flush(Infinity);
    return out.map((l, i) => `${l.replace(SEQ, `"seq":${i + 1}`)}\n`).join('');
  }
}
