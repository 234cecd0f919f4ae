// The guest driver's trace across checkpoint applies. The guest keeps its trace in its
// own memory (the Linux driver's debugfs buffer, the Windows driver's trace buffer), so
// applying a checkpoint puts the older buffer back with the rest of the VM: what the
// guest wrote since the checkpoint is gone from it, and its seq counts those numbers
// again. A lab job reads the guest's trace once, at the end; without this it would lose
// the discarded future's guest events, and `bench check` would call them lost (found
// running the C drivers through real-job.ts, test/run/real/c-vm-job.test.ts).
//
// So before each apply the job reads the guest's trace and keeps what is new since the
// last rewind; after it, the guest's seq goes on from the checkpoint's, and every later
// guest line and guest mark is shifted past what was kept. The stitched file is one
// trace whose seq strictly increases, cut by marks that match it.
//
// Invariant: stitch(final) holds every line the guest wrote, each once, in the order
// written, with seq strictly increasing, and `shift` maps each raw mark read after the
// last apply onto that numbering (test/run/real/guest-trace-rewinds.test.ts).

const SEQ = /"seq":(\d+)/;

function seqOf(line: string): number | null {
  const m = SEQ.exec(line);
  return m ? Number(m[1]) : null;
}

export class GuestTraceRewinds {
  private readonly kept: string[] = [];
  /** raw seqs up to this one in the guest's buffer are kept already (the last apply's checkpoint seq) */
  private covered = 0;
  /** added to a raw guest seq (a line's or a mark's) read since the last apply */
  private offset = 0;
  /** the last raw seq kept before the apply in progress */
  private lastKept = 0;

  /** Before a checkpoint is applied: keeps the lines the guest wrote since the last rewind. */
  before(trace: string, mark: number): void {
    this.lastKept = mark;
    for (const line of trace.split('\n')) {
      const seq = line ? seqOf(line) : null;
      if (seq === null || seq <= this.covered) continue;
      this.kept.push(line.replace(SEQ, `"seq":${seq + this.offset}`));
      this.lastKept = Math.max(this.lastKept, seq);
    }
  }

  /** After the apply: the guest's seq is `mark` again (the checkpoint's); what follows is shifted past what was kept. */
  after(mark: number): void {
    this.offset += this.lastKept - mark;
    this.covered = mark;
  }

  /** A raw guest mark read since the last apply, on the stitched numbering. */
  shift(mark: number): number {
    return mark + this.offset;
  }

  /** The guest's whole trace: what was kept, then the final read's lines since the last rewind. */
  stitch(final: string): string {
    if (this.kept.length === 0 && this.offset === 0) return final;
    const out = [...this.kept];
    for (const line of final.split('\n')) {
      const seq = line ? seqOf(line) : null;
      if (seq === null || seq <= this.covered) continue;
      out.push(line.replace(SEQ, `"seq":${seq + this.offset}`));
    }
    return out.map((l) => `${l}\n`).join('');
  }
}
