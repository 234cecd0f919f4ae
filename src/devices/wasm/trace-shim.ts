// TraceLogging for a C driver on the emulator: each TraceLoggingWrite becomes one event
// of the run's trace. The stand-in TraceLoggingProvider.h turns every field macro into a
// descriptor (kind, name, value), as the real macros do, and the write hands the array
// of them to one call, _TlgStandInWrite, as the real one makes one EtwWriteTransfer: one
// crossing from the driver per event, not one per field. A digest or a status comes as
// its number (TraceLoggingHexUInt64 / HexUInt32, ETW's hex out-type) and is written as the
// ETW converter writes it, 16 or 8 lowercase hex digits: no text is made in the driver
// nor read back from its memory.
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
import { CStrings, newSlot, type Linear, type StringSlot } from './linear.ts';
import { violation } from './violations.ts';
import { hexOfHalves } from '../digest.ts';

/** struct _TlgStandInField in wasm32 (the stand-in header asserts it): Kind, Name, then an 8-byte Value. */
export const FIELD_BYTES = 16;
export const FieldKind = { UInt64: 1, UInt32: 2, String: 3, Boolean: 4, HexUInt64: 5, HexUInt32: 6 } as const;

export class TraceShim {
  private readonly rt: DriverRuntime;
  private sink: TraceSink;
  private readonly side: 'host' | 'guest';
  /** names, literals and repeated values (linear.ts CStrings) */
  private readonly strings = new CStrings();
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
    return {
      env: {
        TraceLoggingRegister: () => {
          this.registered++;
          return 0;
        },
        TraceLoggingUnregister: () => void this.registered--,
        _TlgStandInWrite: (_provider: number, eventName: number, fields: number, count: number) => this.event(eventName, fields >>> 0, count >>> 0),
      },
    };
  }

  /**
   * The event at an event name's address as last written: its name and its fields'
   * kinds and names. Names are string literals (the macros append "" to them), and as in
   * real TraceLogging, which compiles them into the provider's metadata, they do not
   * change while the driver runs: each is read from memory once. A write whose fields
   * differ from the shape kept (another call site with the same name) replaces it.
   */
  private readonly shapes = new Map<number, EventShape>();

  /** One TraceLoggingWrite: the event's name and its `count` field descriptors at `fields`. */
  private event(eventName: number, fields: number, count: number): void {
    const m = this.rt.mem;
    if ((fields & 7) !== 0 || fields + count * FIELD_BYTES > m.bytes.length) {
      throw violation('trace.misuse', '_TlgStandInWrite', `${count} fields at 0x${fields.toString(16)}`, 'the field descriptors are not an array of struct _TlgStandInField in the driver\'s memory');
    }
    let shape = this.shapes.get(eventName);
    if (shape === undefined || !shape.fits(m, fields, count)) this.shapes.set(eventName, (shape = EventShape.read(m, this.side, eventName, fields, count)));
    const w = m.words;
    const word = fields >>> 2;
    const body = shape.decode(w, word, m.bytes, this.strings, m);
    const seq = shape.seqAt < 0 ? 0 : (fieldValue(shape.kinds[shape.seqAt]!, w, word + shape.seqAt * (FIELD_BYTES / 4), m.bytes, this.strings, m) as number);
    this.write(seq, body as unknown as EventBody);
  }

  private write(seq: number, body: EventBody): void {
    if (seq === 0 || seq === this.lastSeq + 1) {
      if (seq) this.lastSeq = seq;
      this.sink.emit(body);
      while (this.waiting.size > 0 && this.waiting.has(this.lastSeq + 1)) {
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

  /** As a new shim, writing to `sink` (a reused runtime, DriverRuntime.reuse). */
  reset(sink: TraceSink): void {
    this.sink = sink;
    this.waiting.clear();
    this.lastSeq = 0;
    this.registered = 0;
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

/** What TraceShim keeps of an event name's fields (TraceShim.shapes). */
class EventShape {
  readonly ev: string;
  readonly kinds: number[];
  readonly nameAt: number[];
  readonly names: string[];
  /** the field that is the driver's seq (not copied into the event), or -1 */
  readonly seqAt: number;
  /** The event of this shape from its descriptors (the first one's word at `word`): see `decoder`. */
  readonly decode: Decoder;
  private constructor(ev: string, kinds: number[], nameAt: number[], names: string[], side: 'host' | 'guest') {
    this.ev = ev;
    this.kinds = kinds;
    this.nameAt = nameAt;
    this.names = names;
    this.seqAt = names.indexOf('seq');
    this.decode = decoder(side, ev, kinds, names, this.seqAt);
  }

  static read(m: Linear, side: 'host' | 'guest', eventName: number, fields: number, count: number): EventShape {
    const kinds: number[] = [];
    const nameAt: number[] = [];
    const names: string[] = [];
    for (let i = 0, at = fields; i < count; i++, at += FIELD_BYTES) {
      const kind = m.u32(at);
      if (kind < FieldKind.UInt64 || kind > FieldKind.HexUInt32) {
        throw violation('trace.misuse', '_TlgStandInWrite', `field ${i} kind ${kind}`, 'not a field kind of the stand-in TraceLoggingProvider.h');
      }
      const name = m.cstring(m.u32(at + 4));
      // In an object literal this name would set the event's prototype, not a field.
      if (name === '__proto__') throw violation('trace.misuse', '_TlgStandInWrite', `field ${i} '__proto__'`, 'a field name a trace event cannot carry');
      kinds.push(kind);
      nameAt.push(m.u32(at + 4));
      names.push(name);
    }
    return new EventShape(m.cstring(eventName), kinds, nameAt, names, side);
  }

  /** Whether the descriptors at `fields` have this shape's kinds and names (by address). */
  fits(m: Linear, fields: number, count: number): boolean {
    if (count !== this.kinds.length) return false;
    const w = m.words;
    for (let i = 0, word = fields >>> 2; i < count; i++, word += FIELD_BYTES / 4) {
      if (w[word] !== this.kinds[i] || w[word + 1] !== this.nameAt[i]) return false;
    }
    return true;
  }
}

type Decoder = (w: Uint32Array, word: number, b: Uint8Array, strings: CStrings, m: Linear) => Record<string, unknown>;

/**
 * A shape's decoder, compiled once per shape: one object literal, its keys in the event's
 * order, each value read straight from its descriptor (as src/trace/event-columns.ts
 * compiles its decoders). An event's object is then made at once, as a TypeScript twin's
 * literal is, instead of key by key. The keys are the driver's literals, quoted by
 * JSON.stringify; the side and event name are passed in, not written into the code.
 * Invariant: decode gives, for every field but seq, fieldValue of that field under its
 * name, in the order of the descriptors (test/devices/wasm/trace-shim.test.ts).
 */
function decoder(side: 'host' | 'guest', ev: string, kinds: readonly number[], names: readonly string[], seqAt: number): Decoder {
  const values: string[] = [];
  // A string field's value is read at one address or few: each field keeps its own slot.
  const slots: StringSlot[] = [];
  // A hex UInt32 (a status) is one of few values: each field keeps its last value's text.
  const hex32: Hex32Slot[] = [];
  kinds.forEach((kind, i) => {
    if (i === seqAt) return;
    const at = i * (FIELD_BYTES / 4);
    const value =
      kind === FieldKind.UInt64 ? `w[word + ${at + 3}] * 4294967296 + w[word + ${at + 2}]`
      : kind === FieldKind.UInt32 ? `w[word + ${at + 2}]`
      : kind === FieldKind.String ? `strings.read(m, w[word + ${at + 2}], SLOTS[${slots.push(newSlot()) - 1}])`
      : kind === FieldKind.HexUInt64 ? `HEX64(w[word + ${at + 3}], w[word + ${at + 2}])`
      : kind === FieldKind.HexUInt32 ? `HEX32(w[word + ${at + 2}], HEX32SLOTS[${hex32.push({ v: -1, s: '' }) - 1}])`
      : `b[4 * word + ${4 * at + 8}] !== 0`;
    values.push(`${JSON.stringify(names[i])}: ${value}`);
  });
  const make = new Function('SIDE', 'EV', 'SLOTS', 'HEX64', 'HEX32', 'HEX32SLOTS', `return function (w, word, b, strings, m) { return { side: SIDE, ev: EV, ${values.join(', ')} }; };`);
  return make(side, ev, slots, hexOfHalves, hexOfU32, hex32) as Decoder;
}

/** The last value a hex UInt32 field had, and its text. */
interface Hex32Slot {
  v: number;
  s: string;
}

/**
 * A TraceLoggingHexUInt32 as the trace writes it (8 lowercase digits, as the converter
 * does); a field's value repeats (a status), so the text of the last one is kept.
 */
function hexOfU32(v: number, slot: Hex32Slot): string {
  if (v !== slot.v) {
    slot.v = v;
    slot.s = hex8(v);
  }
  return slot.s;
}

/** A 32-bit value as 8 lowercase hex digits. */
function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
}

/** One field's value, the way the decoder reads it (for seq, which is not in the event). */
function fieldValue(kind: number, w: Uint32Array, word: number, b: Uint8Array, strings: CStrings, m: Linear): number | string | boolean {
  switch (kind) {
    // Two halves rounded once: the value Number(BigInt) would give.
    case FieldKind.UInt64: return w[word + 3]! * 0x1_0000_0000 + w[word + 2]!;
    case FieldKind.UInt32: return w[word + 2]!;
    case FieldKind.String: return strings.at(m, w[word + 2]!);
    case FieldKind.HexUInt64: return hexOfHalves(w[word + 3]!, w[word + 2]!);
    case FieldKind.HexUInt32: return hex8(w[word + 2]!);
    default: return b[4 * word + 8] !== 0; // BOOLEAN: one byte
  }
}
