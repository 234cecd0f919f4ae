// Where trace events go. The emulator writes through a TraceSink and never knows whether
// the events become a file, stay in memory for a test, or feed the online property
// checker of `bench explore` (which must not pay for JSON it never reads).
import type { EventBody, TraceEvent } from './schema.ts';
import { stringifyExact } from './json-ids.ts';

export interface TraceSink {
  /** Stamps v, seq and src on the event and passes it on. */
  emit(body: EventBody): void;
}

/** Stamps events with a strictly increasing seq and hands them to `onEvent`. */
export class StampingSink implements TraceSink {
  private seq: number;
  private readonly src: string;
  private readonly onEvent: (e: TraceEvent) => void;
  /** `startSeq`: the seq already used, when a run continues another sink's trace (a thread hand-off). */
  constructor(src: string, onEvent: (e: TraceEvent) => void, startSeq = 0) {
    this.src = src;
    this.onEvent = onEvent;
    this.seq = startSeq;
  }
  emit(body: EventBody): void {
    // Invariant: seq strictly increases within one trace (TRACE-SCHEMA.md).
    this.seq += 1;
    this.onEvent({ v: 1, seq: this.seq, src: this.src, ...body } as TraceEvent);
  }
  get lastSeq(): number {
    return this.seq;
  }

  /** Passes on events stamped elsewhere (by a sink that continued this trace on another thread). */
  forward(e: TraceEvent): void {
    if (!(e.seq > this.seq)) throw new Error(`forwarded seq ${e.seq} does not follow ${this.seq}`);
    this.seq = e.seq;
    this.onEvent(e);
  }
}

/** Keeps every event in memory (tests, small runs). */
export class MemorySink extends StampingSink {
  readonly events: TraceEvent[];
  constructor(src = 'emulator') {
    const events: TraceEvent[] = [];
    super(src, (e) => events.push(e));
    this.events = events;
  }
}

/** Serialises one event as its JSON Lines line (without the newline). */
export function formatEvent(e: TraceEvent): string {
  // A tx from 2^53 on is a bigint (vmbus/tx-id.ts), which JSON.stringify refuses: it is
  // written as the JSON integer it is (DESIGN.md: ids are integers), digits and all.
  if (typeof (e as { tx?: unknown }).tx === 'bigint') return stringifyExact(e);
  return JSON.stringify(e);
}
