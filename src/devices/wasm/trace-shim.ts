// TraceLogging for a C driver on the emulator: each TraceLoggingWrite becomes one event
// of the run's trace. The stand-in TraceLoggingProvider.h turns every field macro into a
// call (_TlgStandInUInt64(value, "name"), ...) evaluated as an argument of the write, so
// the fields arrive here first and the write takes them.
//
// The driver numbers its events itself (`seq`, so a pkt.send can reserve its place
// before VmbPacketSend, whose completion may be traced first). The run's trace has one
// seq for every source, so the driver's seq is not copied: it only orders. Events wait
// until every lower seq has been written, and whatever still waits when the driver
// returns to the kernel (a reserved seq never written, say a failed send) is passed on
// in seq order then.

import type { EventBody } from '../../trace/schema.ts';
import type { TraceSink } from '../../trace/sink.ts';
import type { DriverRuntime, ImportTable } from './runtime.ts';

export class TraceShim {
  private readonly rt: DriverRuntime;
  private readonly sink: TraceSink;
  private readonly side: 'host' | 'guest';
  /** The fields of the write being made, as names and values side by side (no array per field). */
  private readonly names: string[] = [];
  private readonly values: Array<number | string | boolean> = [];
  private count = 0;
  private readonly waiting = new Map<number, EventBody>();
  private lastSeq = 0;
  registered = 0;

  constructor(rt: DriverRuntime, sink: TraceSink, side: 'host' | 'guest') {
    this.rt = rt;
    this.sink = sink;
    this.side = side;
    rt.afterEntry.push(() => this.flush());
  }

  imports(): ImportTable {
    const m = () => this.rt.mem;
    // Field and event names are string literals: read once per address.
    const names = new Map<number, string>();
    const literal = (at: number): string => {
      let s = names.get(at);
      if (s === undefined) names.set(at, (s = m().cstring(at)));
      return s;
    };
    const field = (name: number, value: number | string | boolean): number => {
      this.names[this.count] = literal(name);
      this.values[this.count++] = value;
      return 0;
    };
    return {
      env: {
        TraceLoggingRegister: () => {
          this.registered++;
          return 0;
        },
        TraceLoggingUnregister: () => void this.registered--,
        _TlgStandInUInt64: (v: bigint, name: number) => field(name, Number(BigInt.asUintN(64, v))),
        _TlgStandInUInt32: (v: number, name: number) => field(name, v >>> 0),
        _TlgStandInString: (v: number, name: number) => field(name, m().cstring(v)),
        _TlgStandInBoolean: (v: number, name: number) => field(name, (v & 0xff) !== 0),
        _TlgStandInWrite: (_provider: number, eventName: number) => {
          const n = this.count;
          this.count = 0;
          let seq = 0;
          const body: Record<string, unknown> = { side: this.side, ev: literal(eventName) };
          for (let i = 0; i < n; i++) {
            const k = this.names[i]!;
            if (k === 'seq') seq = this.values[i] as number;
            else body[k] = this.values[i];
          }
          this.write(seq, body as unknown as EventBody);
        },
      },
    };
  }

  private write(seq: number, body: EventBody): void {
    if (seq === 0 || seq === this.lastSeq + 1) {
      if (seq) this.lastSeq = seq;
      this.sink.emit(body);
      while (this.waiting.has(this.lastSeq + 1)) {
        const next = this.waiting.get(this.lastSeq + 1)!;
        this.waiting.delete(++this.lastSeq);
        this.sink.emit(next);
      }
      return;
    }
    this.waiting.set(seq, body);
  }

  /** Events waiting for a lower seq (none once the driver has returned: flush). */
  get waitingEvents(): number {
    return this.waiting.size;
  }

  /** Passes on what waits for a seq that will not come (see the top of the file). */
  flush(): void {
    if (this.waiting.size === 0) return;
    for (const seq of [...this.waiting.keys()].sort((a, b) => a - b)) {
      this.sink.emit(this.waiting.get(seq)!);
      this.lastSeq = seq;
    }
    this.waiting.clear();
  }
}
