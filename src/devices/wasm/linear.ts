// A driver module's linear memory, as the shim reads and writes it: little-endian
// scalars at addresses the driver passes, and copies between the rings' shared memory
// (Uint8Arrays) and the driver's buffers. Views are made again whenever the memory has
// grown (growing detaches the old ArrayBuffer).

const utf8 = new TextDecoder();
const utf16 = new TextDecoder('utf-16le');

export class Linear {
  readonly memory: WebAssembly.Memory;
  private buf: ArrayBuffer | null = null;
  private u8view = new Uint8Array(0);
  private dv = new DataView(new ArrayBuffer(0));
  private u32view: Uint32Array | null = null;

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
      this.u32view = null;
    }
  }

  get bytes(): Uint8Array {
    this.fresh();
    return this.u8view;
  }

  get size(): number {
    return this.memory.buffer.byteLength;
  }

  /** Makes the memory at least `end` bytes long. */
  ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    this.memory.grow(Math.ceil((end - have) / 65536));
  }

  u32(at: number): number {
    this.fresh();
    return this.dv.getUint32(at >>> 0, true);
  }
  setU32(at: number, v: number): void {
    this.fresh();
    this.dv.setUint32(at >>> 0, v >>> 0, true);
  }
  setU16(at: number, v: number): void {
    this.fresh();
    this.dv.setUint16(at >>> 0, v & 0xffff, true);
  }
  setU64(at: number, v: bigint): void {
    this.fresh();
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
    return this.u8view.subarray(at >>> 0, (at >>> 0) + (len >>> 0));
  }

  write(at: number, src: Uint8Array): void {
    this.fresh();
    this.u8view.set(src, at >>> 0);
  }

  /** A NUL-terminated string (TraceLogging names and values, debug text). */
  cstring(at: number, max = 4096): string {
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
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
    return s;
  }

  /** Whether every byte in [from, to) is `value` (word-wise where aligned). */
  allBytes(from: number, to: number, value: number): boolean {
    this.fresh();
    const b = this.u8view;
    let i = from;
    while (i < to && (i & 3) !== 0) if (b[i++] !== value) return false;
    const words = this.u32view ??= new Uint32Array(this.buf!);
    const w = (value * 0x01010101) >>> 0;
    for (; i + 4 <= to; i += 4) if (words[i >> 2] !== w) return false;
    for (; i < to; i++) if (b[i] !== value) return false;
    return true;
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
