// Where trace events go. The emulator writes through a TraceSink and never knows whether
// the events become a file, stay in memory for a test, or feed the online property
// checker of `bench explore` (which must not pay for JSON it never reads).
import type { EventBody, TraceEvent } from './schema.ts';

export interface TraceSink {
  /** Stamps v, seq and src on the event and passes it on. */
  emit(body: EventBody): void;
}

/** Stamps events with a strictly increasing seq and hands them to `onEvent`. */
export class StampingSink implements TraceSink {
  private seq = 0;
  private readonly src: string;
  private readonly onEvent: (e: TraceEvent) => void;
  constructor(src: string, onEvent: (e: TraceEvent) => void) {
    this.src = src;
    this.onEvent = onEvent;
  }
  emit(body: EventBody): void {
    // Invariant: seq strictly increases within one trace (DESIGN.md).
    this.seq += 1;
    this.onEvent({ v: 1, seq: this.seq, src: this.src, ...body } as TraceEvent);
  }
  get lastSeq(): number {
    return this.seq;
  }
}

/** Keeps every event in memory (tests, small runs). */
export class MemorySink extends StampingSink {
  readonly events: TraceEvent[] = [];
  constructor(src = 'emulator') {
    super(src, (e) => this.events.push(e));
  }
}

/** Serialises one event as its JSON Lines line (without the newline). */
export function formatEvent(e: TraceEvent): string {
  return JSON.stringify(e);
}
