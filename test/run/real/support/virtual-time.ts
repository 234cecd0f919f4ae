// What the C partitions that stand in for a lab (c-loopback.ts, c-vm.ts) share: time that
// passes only when the job sleeps, firing the drivers' timers on the way, and a driver's
// trace as the file a lab collects (JSON Lines numbered in the order written).

import type { Clock } from '../../../../src/run/engine/job-pipeline.ts';

/** What moves when time passes: deliveries until none is ready, and the drivers' timers. */
export interface TimeParts {
  /** runs whatever is ready now (deliveries, work items) until nothing is */
  pump(): void;
  /** when each driver's next timer is due; null: none */
  dues(): Array<number | null>;
  /** fires every timer due by `now` */
  fire(now: number): void;
}

/**
 * A clock whose sleeps advance `t.now`: deliveries happen only as time passes, never inside
 * a command (one legal timing of a real host, its interrupts late, and the one the
 * emulator's steps take). A sleep first lets real time pass (a macrotask), so that whatever
 * it races (real-job's operation deadlines) finishes first and aborts it; an aborted sleep
 * moves no time.
 */
export function virtualClock(t: { now: number }, parts: TimeParts): Clock {
  const advance = (ms: number): void => {
    const end = t.now + ms;
    for (;;) {
      parts.pump();
      const due = parts.dues().filter((d): d is number => d !== null && d <= end);
      if (due.length === 0) break;
      t.now = Math.max(t.now, Math.min(...due));
      parts.fire(t.now);
    }
    t.now = end;
    parts.pump();
  };
  return {
    now: () => t.now,
    sleep: async (ms, signal) => {
      await new Promise((r) => setImmediate(r));
      if (signal?.aborted) throw signal.reason;
      advance(ms);
    },
  };
}

/** A driver's events as the trace file a lab collects: JSON Lines, seq in the order written. */
export function traceJsonl(events: ReadonlyArray<Record<string, unknown>>): string {
  return events.map((e, i) => `${JSON.stringify({ ...e, v: 1, src: 'hyperv', seq: i + 1 })}\n`).join('');
}
