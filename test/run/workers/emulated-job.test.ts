// The timeline window of an emulated job: the events before the first violation, that
// event, and a few after; or the run's last events when the violation shows only at the end.
import { describe, expect, it } from 'vitest';
import { TimelineWindow } from '../../../src/run/workers/emulated-job.ts';
import type { TraceEvent } from '../../../src/trace/schema.ts';

const ev = (seq: number): TraceEvent => ({ v: 1, seq, src: 'emulator', side: 'bench', ev: 'vm.pause' }) as TraceEvent;

function feed(w: TimelineWindow, n: number, violationAt?: number): void {
  for (let s = 1; s <= n; s++) w.push(ev(s), s === violationAt ? s : null);
}

describe('TimelineWindow', () => {
  it('keeps the events before the violation, the violation, and the ones after', () => {
    const w = new TimelineWindow(6, 4);
    feed(w, 100, 40);
    expect(w.marked?.seq).toBe(40);
    expect(w.events().map((e) => e.seq)).toEqual([34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44]);
  });

  it('keeps what there is when the violation comes early or late', () => {
    const early = new TimelineWindow(6, 4);
    feed(early, 100, 2);
    expect(early.events().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const late = new TimelineWindow(6, 4);
    feed(late, 50, 49);
    expect(late.events().map((e) => e.seq)).toEqual([43, 44, 45, 46, 47, 48, 49, 50]);
  });

  it('names an earlier event when the violation points back at it', () => {
    const w = new TimelineWindow(6, 4);
    for (let s = 1; s <= 30; s++) w.push(ev(s), s === 20 ? 17 : null);
    expect(w.marked?.seq).toBe(17);
    expect(w.events().map((e) => e.seq)).toContain(17);
  });

  it('without a marked event keeps the last ten', () => {
    const w = new TimelineWindow(6, 4);
    feed(w, 25);
    expect(w.events().map((e) => e.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  });
});
