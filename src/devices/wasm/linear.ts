// A driver module's linear memory, as the shim reads and writes it: little-endian
// scalars at addresses the driver passes, and copies between the rings' shared memory
// (Uint8Arrays) and the driver's buffers. Views are made again whenever the memory has
// grown (growing detaches the old ArrayBuffer).
//
// `version` says when the memory may have changed, so that what is worked out from all
// of it (its runs of pages, memory-runs.ts liveRuns: a scan of megabytes that explore
// needed three times per save point) is worked out once per change. It moves on every
// write through this class, on every raw view handed out (`bytes`, `words`, `view`: the
// holder may write through it, and must not keep it past the call that took it), on
// growth, and on every entry into the driver (DriverRuntime: wasm code writes its memory
// without this class seeing it). Only `peek` hands out a view that does not move it, to
// readers of the whole memory that write nothing.
// Invariant: two reads of the memory at the same version read the same bytes
// (test/devices/wasm/linear.test.ts).

const utf8 = new TextDecoder();
/** The longest string cstring reads by default. */
const CSTRING_MAX = 4096;
const utf16 = new TextDecoder('utf-16le');

export class Linear {
  readonly memory: WebAssembly.Memory;
  private buf: ArrayBuffer | null = null;
  private u8view = new Uint8Array(0);
  private dv = new DataView(new ArrayBuffer(0));
  private u32view = new Uint32Array(0);
  /** moves whenever the memory may have changed (see the top of the file) */
  version = 0;
  /** what was worked out from the memory at `derivedAt` (memory-runs.ts liveRuns) */
  derived: unknown = null;
  derivedAt = -1;

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
  }

  private fresh(): void {
    // Growing detaches the old buffer, and a view of a detached buffer is empty: its
    // length says when to look again, which spares the Memory.buffer getter (a call into
    // the engine) on every access, a twentieth of explore --devices c.
    if (this.u8view.length === 0 && this.buf !== this.memory.buffer) {
      this.buf = this.memory.buffer as ArrayBuffer;
      this.u8view = new Uint8Array(this.buf);
      this.dv = new DataView(this.buf);
      this.u32view = new Uint32Array(this.buf);
    }
  }

  get bytes(): Uint8Array {
    this.fresh();
    this.version++;
    return this.u8view;
  }

  /** The memory as 32-bit words (for aligned reads: word i is bytes 4i..4i+3). */
  get words(): Uint32Array {
    this.fresh();
    this.version++;
    return this.u32view;
  }

  /** The memory's bytes for a reader that writes nothing through them (the version stays). */
  peek(): Uint8Array {
    this.fresh();
    return this.u8view;
  }

  /** Says the memory may have changed where this class could not see it (the driver ran). */
  touched(): void {
    this.version++;
  }

  get size(): number {
    return this.memory.buffer.byteLength;
  }

  /** Makes the memory at least `end` bytes long. */
  ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    this.version++;
    this.memory.grow(Math.ceil((end - have) / 65536));
  }

  u8(at: number): number {
    this.fresh();
    return this.u8view[at >>> 0]!;
  }
  u32(at: number): number {
    this.fresh();
    return this.dv.getUint32(at >>> 0, true);
  }
  setU32(at: number, v: number): void {
    this.fresh();
    this.version++;
    this.dv.setUint32(at >>> 0, v >>> 0, true);
  }
  setU16(at: number, v: number): void {
    this.fresh();
    this.version++;
    this.dv.setUint16(at >>> 0, v & 0xffff, true);
  }
  setU64(at: number, v: bigint): void {
    this.fresh();
    this.version++;
    this.dv.setBigUint64(at >>> 0, BigInt.asUintN(64, v), true);
  }

  /** A copy of `len` bytes at `at` (the driver's buffer outlives nothing the shim keeps). */
  read(at: number, len: number): Uint8Array {
    this.fresh();
    return this.u8view.slice(at >>> 0, (at >>> 0) + (len >>> 0));
  }

  /** A live view; valid until the next call into the driver or the pool. */
  view(at: number, len: number): Uint8Array {
    this.fresh();
    this.version++;
    return this.u8view.subarray(at >>> 0, (at >>> 0) + (len >>> 0));
  }

  write(at: number, src: Uint8Array): void {
    this.fresh();
    this.version++;
    this.u8view.set(src, at >>> 0);
  }

  /** A NUL-terminated string (TraceLogging names and values, debug text). */
  cstring(at: number, max = CSTRING_MAX): string {
    this.fresh();
    const b = this.u8view;
    const start = at >>> 0;
    let end = start;
    let ascii = true;
    while (end < b.length && end - start < max && b[end] !== 0) {
      if (b[end]! > 0x7f) ascii = false;
      end++;
    }
    if (!ascii) return utf8.decode(b.subarray(start, end));
    // The usual case (names, hex digests): ASCII, short; no decoder call.
    return latin1(b, start, end);
  }

  /** The memory as 32-bit words for a reader that writes nothing through them (the version stays). */
  peekWords(): Uint32Array {
    this.fresh();
    return this.u32view;
  }

  /**
   * Whether every byte in [from, to) is `value` (word-wise where aligned): the pool's
   * guard and poison checks, several per packet, so the views are taken once. A long
   * range (a quarantined buffer of kilobytes, whose poison is checked as it leaves) is
   * compared natively, a few times faster than a loop of words.
   */
  allBytes(from: number, to: number, value: number): boolean {
    this.fresh();
    const b = this.u8view;
    if (to - from >= NATIVE_COMPARE) {
      const same = filledWith(value);
      for (let i = from; i < to; i += FILLED) {
        const n = Math.min(FILLED, to - i);
        if (b[i] !== value || b[i + n - 1] !== value || Buffer.compare(b.subarray(i, i + n), same.subarray(0, n)) !== 0) return false;
      }
      return true;
    }
    const words = this.u32view;
    let i = from;
    for (; i < to && (i & 3) !== 0; i++) if (b[i] !== value) return false;
    const w = (value * 0x01010101) | 0;
    for (const end = to - 3; i < end; i += 4) if ((words[i >>> 2]! | 0) !== w) return false;
    for (; i < to; i++) if (b[i] !== value) return false;
    return true;
  }

  /**
   * Bytes [from, to) set to `value` (the pool's guards, zeroes and poison): word-wise when
   * short, as a call to TypedArray fill costs more than a packet-sized block's stores.
   */
  fill(value: number, from: number, to: number): void {
    this.fresh();
    this.version++;
    const b = this.u8view;
    if (to - from > 512) {
      b.fill(value, from, to);
      return;
    }
    const words = this.u32view;
    let i = from;
    for (; i < to && (i & 3) !== 0; i++) b[i] = value;
    const w = (value * 0x01010101) | 0;
    for (const end = to - 3; i < end; i += 4) words[i >>> 2] = w;
    for (; i < to; i++) b[i] = value;
  }

  /** `len` bytes of UTF-16LE (a UNICODE_STRING's buffer). */
  utf16(at: number, bytes: number): string {
    this.fresh();
    return utf16.decode(this.u8view.subarray(at >>> 0, (at >>> 0) + bytes));
  }

  /** Writes a GUID given in text form at `at` (the in-memory layout: Data1-3 little-endian). */
  setGuid(at: number, text: string): void {
    const hex = text.replace(/-/g, '');
    this.setU32(at, Number.parseInt(hex.slice(0, 8), 16));
    this.setU16(at + 4, Number.parseInt(hex.slice(8, 12), 16));
    this.setU16(at + 6, Number.parseInt(hex.slice(12, 16), 16));
    for (let i = 0; i < 8; i++) this.bytes[(at >>> 0) + 8 + i] = Number.parseInt(hex.slice(16 + 2 * i, 18 + 2 * i), 16);
  }

  /** A GUID at `at` in text form (Data1-Data2-Data3-Data4). */
  guid(at: number): string {
    this.fresh();
    const a = at >>> 0;
    const d1 = this.dv.getUint32(a, true).toString(16).padStart(8, '0');
    const d2 = this.dv.getUint16(a + 4, true).toString(16).padStart(4, '0');
    const d3 = this.dv.getUint16(a + 6, true).toString(16).padStart(4, '0');
    const d4 = [...this.u8view.subarray(a + 8, a + 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${d1}-${d2}-${d3}-${d4.slice(0, 4)}-${d4.slice(4)}`;
  }
}

/** Ranges this long or longer are compared natively (Linear.allBytes); below it the call and the views cost more than the loop. */
const NATIVE_COMPARE = 1024;

/** The length of the arrays filledWith gives. */
export const FILLED = 64 * 1024;

/** FILLED bytes of each byte value, to compare memory with (never written). */
const filled: Array<Uint8Array | undefined> = [];

/** FILLED bytes all equal to `v`, made once per value and shared: callers only read it. */
export function filledWith(v: number): Uint8Array {
  return (filled[v] ??= new Uint8Array(FILLED).fill(v));
}

/** How many addresses a CStrings remembers before it starts over. */
const CSTRINGS_KEPT = 4096;

/**
 * NUL-terminated strings of one driver's memory, remembered by address: a literal (a
 * field or event name, "g2h") or a value that repeats at its address (a status) is made
 * once, not once per event. Each read compares the bytes now at the address with the
 * string made there last, so a buffer written since reads as its new text.
 * Invariant: at(mem, a) === mem.cstring(a), whatever was written to the memory between
 * reads (test/devices/wasm/linear.test.ts).
 */
export class CStrings {
  /** per address: the string made there last */
  private readonly byAddress = new Map<number, StringSlot>();

  at(mem: Linear, address: number): string {
    const a = address >>> 0;
    let slot = this.byAddress.get(a);
    if (slot === undefined) {
      if (this.byAddress.size >= CSTRINGS_KEPT) this.byAddress.clear();
      this.byAddress.set(a, (slot = newSlot()));
    }
    return this.read(mem, a, slot);
  }

  /**
   * `at` for a reader of mostly one address (a trace field): its own slot is looked at
   * before the table. Invariant: read(mem, a, slot) === mem.cstring(a), whatever the slot
   * held (test/devices/wasm/linear.test.ts).
   */
  read(mem: Linear, address: number, slot: StringSlot): string {
    const a = address >>> 0;
    const b = mem.bytes;
    // A string made here (latin1) is flat, so comparing it with the bytes char by char
    // reads no more than the bytes: a changed digest differs within a character or two.
    if (slot.at === a && stillThere(b, a, slot.s)) return slot.s;
    if (slot.at !== a && this.byAddress.size > 0) {
      const known = this.byAddress.get(a);
      if (known !== undefined && known !== slot && known.at === a && stillThere(b, a, known.s)) return remember(slot, a, known.s);
    }
    let end = a;
    const last = Math.min(b.length, a + CSTRING_MAX);
    while (end < last) {
      const c = b[end]!;
      if (c === 0) break;
      // Anything but ASCII is UTF-8, decoded each time (compared byte for char it would never match).
      if (c > 0x7f) return mem.cstring(a);
      end++;
    }
    return remember(slot, a, latin1(b, a, end));
  }
}

/** The string last read at an address. */
export interface StringSlot {
  at: number;
  s: string;
}

export function newSlot(): StringSlot {
  return { at: -1, s: '' };
}

function remember(slot: StringSlot, at: number, s: string): string {
  slot.at = at;
  slot.s = s;
  return s;
}

/**
 * Bytes [from, to) as Latin-1 text. A digest (16 hex digits) and a status (8) are the
 * strings a driver's trace makes anew per event: each is one call making one flat
 * string, as the twins' hexOfHalves (src/devices/digest.ts) makes theirs; two 8-character
 * pieces concatenated made a rope, flattened again when the event is written. Others
 * go eight characters a call.
 */
function latin1(b: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (n === 16) {
    return String.fromCharCode(
      b[from]!, b[from + 1]!, b[from + 2]!, b[from + 3]!, b[from + 4]!, b[from + 5]!, b[from + 6]!, b[from + 7]!,
      b[from + 8]!, b[from + 9]!, b[from + 10]!, b[from + 11]!, b[from + 12]!, b[from + 13]!, b[from + 14]!, b[from + 15]!,
    );
  }
  if (n === 8) return String.fromCharCode(b[from]!, b[from + 1]!, b[from + 2]!, b[from + 3]!, b[from + 4]!, b[from + 5]!, b[from + 6]!, b[from + 7]!);
  let s = '';
  let i = from;
  for (; i + 8 <= to; i += 8) s += String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!, b[i + 7]!);
  for (; i < to; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Whether cstring(at) would read `s` (ASCII) from `b` now: its bytes, then where it stops. */
function stillThere(b: Uint8Array, at: number, s: string): boolean {
  const n = s.length;
  if (at + n > b.length) return false;
  for (let i = 0; i < n; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  // cstring stops at a NUL, the end of memory or its 4096-character limit.
  return at + n === b.length || b[at + n] === 0 || n === CSTRING_MAX;
}
