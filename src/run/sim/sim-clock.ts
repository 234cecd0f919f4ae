// Simulated time for the engine: `sleep` parks a timer, and `drive` advances the clock to
// the next timer only when nothing else can run (every microtask and immediate drained),
// so hours of lab time pass in seconds and the engine's own code runs exactly as it
// would in real time. Real I/O the engine awaits meanwhile (rare: the journal is
// synchronous) is waited for in real time before the clock moves on.

import type { Clock } from '../engine/job-pipeline.ts';

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
  dead: boolean;
}

export class SimClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap: Timer[] = [];
  /** Timers fired so far. */
  fired = 0;

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, dead: false, fire: () => { signal?.removeEventListener('abort', onAbort); resolve(); } };
      const onAbort = () => { timer.dead = true; reject(signal!.reason as Error); };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.push(timer);
    });
  }

  /** Runs `p` to completion, moving simulated time forward whenever everything waits on it. */
  async drive<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    p.then(() => { settled = true; }, () => { settled = true; });
    while (!settled) {
      await new Promise<void>((r) => setImmediate(r));
      if (settled) break;
      const next = this.pop();
      if (!next) {
        await new Promise<void>((r) => setTimeout(r, 1));
        continue;
      }
      this.t = Math.max(this.t, next.at);
      this.fired++;
      next.fire();
    }
    return p;
  }

  private push(x: Timer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    for (;;) {
      if (h.length === 0) return undefined;
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < h.length && before(h[l]!, h[m]!)) m = l;
          if (r < h.length && before(h[r]!, h[m]!)) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m]!, h[i]!];
          i = m;
        }
      }
      if (!top.dead) return top;
    }
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
