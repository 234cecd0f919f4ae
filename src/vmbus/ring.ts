// One VMBus ring: index arithmetic, packet writing and reading, and the signalling rules.
//
// Rings come in pairs (one per direction); this module handles one. The memory is a
// SharedArrayBuffer region laid out as ring-layout.ts describes, so the writer and the
// reader can be on different threads and a ring can be dumped byte for byte.
//
// Expected outcomes are values: a ring is empty, or too full for a packet. Corruption
// (an index or descriptor a correct peer could not have written) throws RingCorruptError
// and is never followed. Every index read from shared memory is validated first.
//
// A packet that is well framed (offset8, len8 and its length all sound) but of a type
// outside the four known ones, or with a flag other than bit 0, is not corruption: the
// ring can step over it. Linux's iterator (hv_pkt_iter_first / hv_pkt_iter_next in
// drivers/hv/ring_buffer.c) and DPDK's rte_vmbus_chan_recv (vmbus_bufring.c) hand any
// type to the driver and move on by its length; the drivers then log it and go on
// (Linux netvsc_process_raw_pkt "unhandled packet type", DPDK hn_process_events "unknown
// chan pkt"). openvmm's parse_packet refuses it. The reader here does as Linux and DPDK:
// it skips the packet (the space is freed with the next commit) and reports it through
// `onUnacceptable` with its offset, so the run can name it (trace event ring.format,
// divergence class ring-format) instead of stopping the ring for good.
//
// Writing is reserve, write, then commit: a writer may put several packets in the ring
// and publish them with one index update. Only the commit decides whether to signal.

import { txFromHalves, txHi, txLo, type TxId } from './tx-id.ts';
import {
  CONTROL_PAGE_SIZE,
  ControlWord,
  Descriptor,
  FEATURE_SUPPORTS_PENDING_SEND_SIZE,
  PAGE_SIZE,
  TRAILER_SIZE,
  align8,
  isKnownPacketType,
} from './ring-layout.ts';

export type RingCorruption =
  | 'bad-read-index'
  | 'bad-write-index'
  | 'short-packet'
  | 'bad-offset8'
  | 'bad-len8'
  | 'len-past-write';

/** Why a well-framed packet was skipped rather than read (see the header). */
export type UnacceptablePacket = 'unknown-type' | 'unknown-flags';

export class RingCorruptError extends Error {
  readonly kind: RingCorruption;
  readonly detail: string;
  constructor(kind: RingCorruption, detail: string) {
    super(`ring corrupt (${kind}): ${detail}`);
    this.name = 'RingCorruptError';
    this.kind = kind;
    this.detail = detail;
  }
}

/** len8 is a u16: the longest packet, trailer excluded, is 65535 * 8 bytes. */
export const MAX_LEN8 = 0xffff;

export type Reserve = { ok: true; at: number; footprint: number } | { ok: false; reason: 'full'; needed: number };

/** A ring's memory: control words and data area inside a SharedArrayBuffer. */
export class RingMemory {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  readonly byteOffset: number;
  readonly dataSize: number;
  /** Control page as 32-bit words; Atomics work on it when the buffer is shared. */
  readonly ctl: Int32Array;
  readonly data: Uint8Array;
  readonly dv: DataView;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer, byteOffset: number, dataPages: number) {
    if (!Number.isInteger(dataPages) || dataPages < 1) throw new RangeError(`a ring needs at least one data page, got ${dataPages}`);
    if (byteOffset % PAGE_SIZE !== 0) throw new RangeError(`ring must start on a page boundary, got offset ${byteOffset}`);
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.dataSize = dataPages * PAGE_SIZE;
    if (byteOffset + CONTROL_PAGE_SIZE + this.dataSize > buffer.byteLength) {
      throw new RangeError('ring does not fit in its buffer');
    }
    this.ctl = new Int32Array(buffer, byteOffset, CONTROL_PAGE_SIZE / 4);
    this.data = new Uint8Array(buffer, byteOffset + CONTROL_PAGE_SIZE, this.dataSize);
    this.dv = new DataView(buffer, byteOffset + CONTROL_PAGE_SIZE, this.dataSize);
  }

  load(word: number): number {
    return Atomics.load(this.ctl, word) >>> 0;
  }
  store(word: number, value: number): void {
    Atomics.store(this.ctl, word, value | 0);
  }

  /** Validates an index read from shared memory. */
  index(word: number): number {
    const v = this.load(word);
    // Invariant: both indices are multiples of 8 and inside the data area.
    if (v % 8 !== 0 || v >= this.dataSize) {
      const kind = word === ControlWord.readIndex ? 'bad-read-index' : 'bad-write-index';
      throw new RingCorruptError(kind, `index ${v} is not a multiple of 8 below the data size ${this.dataSize}`);
    }
    return v;
  }

  /** Bytes readable between read index r and write index w. */
  readable(r: number, w: number): number {
    return w >= r ? w - r : this.dataSize - r + w;
  }

  /** Copies `len` bytes from src into the data area at `at`, wrapping. */
  copyIn(at: number, src: Uint8Array, srcStart: number, len: number): void {
    const first = Math.min(len, this.dataSize - at);
    if (srcStart === 0 && len === src.length && first === len) {
      this.data.set(src, at);
      return;
    }
    this.data.set(src.subarray(srcStart, srcStart + first), at);
    if (first < len) this.data.set(src.subarray(srcStart + first, srcStart + len), 0);
  }

  /** Copies `len` bytes out of the data area starting at `at`, wrapping. */
  copyOut(at: number, len: number): Uint8Array {
    // The common case (no wrap) is one native slice: no view object, one copy.
    if (at + len <= this.dataSize) return this.data.slice(at, at + len);
    const out = new Uint8Array(len);
    const first = Math.min(len, this.dataSize - at);
    out.set(this.data.subarray(at, at + first), 0);
    if (first < len) out.set(this.data.subarray(0, len - first), first);
    return out;
  }

  zero(at: number, len: number): void {
    const first = Math.min(len, this.dataSize - at);
    this.data.fill(0, at, at + first);
    if (first < len) this.data.fill(0, 0, len - first);
  }

  // Descriptor and trailer fields are 2- or 4-aligned inside 8-aligned packets, and the
  // data size is a multiple of 4096, so a field never straddles the end of the data area;
  // only its start needs wrapping.
  u16(at: number): number {
    return this.dv.getUint16(at % this.dataSize, true);
  }
  u32(at: number): number {
    return this.dv.getUint32(at % this.dataSize, true);
  }
  setU16(at: number, v: number): void {
    at %= this.dataSize;
    this.dv.setUint16(at, v, true);
  }
  setU32(at: number, v: number): void {
    at %= this.dataSize;
    this.dv.setUint32(at, v, true);
  }

  /** Zeroes the control page and sets the writer's feature bits (a fresh ring). */
  initialize(): void {
    this.ctl.fill(0);
    this.store(ControlWord.featureBits, FEATURE_SUPPORTS_PENDING_SEND_SIZE);
  }
}

/** The writer's end of a ring. */
export class OutgoingRing {
  readonly mem: RingMemory;
  /** Write index as last published. */
  private committed: number;
  /** Where the next packet goes; ahead of `committed` while a batch is open. */
  private next: number;
  /** Footprint needed by the last write that found the ring full. */
  lastNeeded = 0;
  /**
   * The reader's index as last loaded. It can only be stale in the safe direction: the
   * reader only moves it forward, so the real free space is at least what it implies.
   * It is reloaded only when it says a packet does not fit.
   */
  private cachedRead: number;

  constructor(mem: RingMemory) {
    this.mem = mem;
    this.committed = mem.index(ControlWord.writeIndex);
    this.next = this.committed;
    this.cachedRead = mem.index(ControlWord.readIndex);
  }

  /** Free bytes a new packet may use, counting uncommitted writes. */
  free(): number {
    const r = (this.cachedRead = this.mem.index(ControlWord.readIndex));
    // Invariant: the writer keeps 8 bytes unused so that a full ring never looks empty
    // (read == write means empty). Hence raw free - 8.
    return this.mem.dataSize - this.mem.readable(r, this.next) - 8;
  }

  /** Reserves room for a packet of `footprint` bytes (a multiple of 8). */
  reserve(footprint: number): Reserve {
    if (footprint % 8 !== 0 || footprint < Descriptor.size + TRAILER_SIZE) {
      throw new RangeError(`packet footprint ${footprint} must be a multiple of 8 and hold a descriptor and trailer`);
    }
    if ((footprint - TRAILER_SIZE) / 8 > MAX_LEN8) throw new RangeError(`packet footprint ${footprint} is longer than len8 can describe`);
    if (footprint > this.free()) return { ok: false, reason: 'full', needed: footprint };
    return { ok: true, at: this.next, footprint };
  }

  /**
   * Writes one packet whose header is just the 16-byte descriptor (in-band or
   * completion) and advances the uncommitted write index. Returns false, and sets
   * `lastNeeded`, when it does not fit; nothing is written then.
   */
  tryWrite(type: number, flags: number, transId: TxId, payload: Uint8Array, payloadLen = payload.length): boolean {
    const padded = align8(payloadLen);
    const footprint = Descriptor.size + padded + TRAILER_SIZE;
    if ((Descriptor.size + padded) / 8 > MAX_LEN8) {
      throw new RangeError(`a ${payloadLen}-byte payload does not fit a VMBus packet: len8 is 16 bits (at most ${MAX_LEN8 * 8 - Descriptor.size} bytes)`);
    }
    const m = this.mem;
    const p = this.next;
    if (footprint > m.dataSize - m.readable(this.cachedRead, p) - 8) {
      this.cachedRead = m.index(ControlWord.readIndex);
      if (footprint > m.dataSize - m.readable(this.cachedRead, p) - 8) {
        this.lastNeeded = footprint;
        return false;
      }
    }
    const len8 = (Descriptor.size + padded) / 8;
    if (p + footprint <= m.dataSize) {
      // Fast path: the packet does not wrap, so no field needs the modulo.
      const dv = m.dv;
      // The four u16s of the descriptor as two u32s (little-endian: the low half first).
      dv.setUint32(p, type | ((Descriptor.size / 8) << 16), true);
      dv.setUint32(p + 4, len8 | (flags << 16), true);
      if (typeof transId === 'number') {
        dv.setUint32(p + 8, transId >>> 0, true);
        // (A division per packet was an eighth of the write: ids are almost always below 2^32.)
        dv.setUint32(p + 12, transId > 0xffffffff ? (transId / 0x100000000) >>> 0 : 0, true);
      } else {
        // An id from 2^53 on is a bigint (tx-id.ts): written exactly.
        dv.setBigUint64(p + 8, transId, true);
      }
      m.data.set(payloadLen === payload.length ? payload : payload.subarray(0, payloadLen), p + Descriptor.size);
      const trailerAt = p + len8 * 8;
      for (let i = p + Descriptor.size + payloadLen; i < trailerAt; i++) m.data[i] = 0;
      dv.setUint32(trailerAt, 0, true);
      dv.setUint32(trailerAt + 4, p, true);
      const end = p + footprint;
      this.next = end === m.dataSize ? 0 : end;
      return true;
    }
    m.setU16(p + Descriptor.type, type);
    m.setU16(p + Descriptor.offset8, Descriptor.size / 8);
    m.setU16(p + Descriptor.len8, len8);
    m.setU16(p + Descriptor.flags, flags);
    m.setU32(p + Descriptor.transIdLo, txLo(transId));
    m.setU32(p + Descriptor.transIdHi, txHi(transId));
    const payloadAt = (p + Descriptor.size) % m.dataSize;
    m.copyIn(payloadAt, payload, 0, payloadLen);
    if (padded !== payloadLen) m.zero((payloadAt + payloadLen) % m.dataSize, padded - payloadLen);
    const trailerAt = (p + len8 * 8) % m.dataSize;
    m.setU32(trailerAt, 0);
    m.setU32(trailerAt + 4, p);
    this.next = (p + footprint) % m.dataSize;
    return true;
  }

  /** Drops writes that were not committed yet. */
  revert(): void {
    this.next = this.committed;
  }

  /**
   * Publishes every write since the last commit. Returns whether to signal the reader:
   * only on empty -> non-empty, and only when the reader has not masked interrupts.
   */
  commit(): boolean {
    if (this.next === this.committed) return false;
    const before = this.committed;
    this.mem.store(ControlWord.writeIndex, this.next);
    this.committed = this.next;
    // Read after publishing (Atomics are sequentially consistent), closing the race
    // with a reader that is clearing its mask and re-checking the write index.
    const mask = this.mem.load(ControlWord.interruptMask);
    const r = this.mem.index(ControlWord.readIndex);
    return mask === 0 && r === before;
  }

  /** Advertises that the writer is blocked until `bytes` are free (0 = not blocked). */
  setPendingSendSize(bytes: number): void {
    this.mem.store(ControlWord.pendingSendSize, bytes === 0 ? 0 : align8(bytes));
  }

  get writeIndex(): number {
    return this.committed;
  }
}

/** What `peek` found at the read position. Reused between calls: copy what you keep. */
export interface PacketView {
  type: number;
  flags: number;
  /** exact (tx-id.ts): a number below 2^53, a bigint above */
  transId: TxId;
  /** where the payload starts in the data area */
  payloadAt: number;
  /** payload bytes as the ring knows them: a multiple of 8 */
  payloadLen: number;
  /** bytes the packet occupies, trailer included */
  footprint: number;
}

/** The reader's end of a ring. */
export class IncomingRing {
  readonly mem: RingMemory;
  private committed: number;
  private next: number;
  private readonly view: PacketView = { type: 0, flags: 0, transId: 0, payloadAt: 0, payloadLen: 0, footprint: 0 };
  /** The writer's index as last loaded; reloaded only when it says the ring is empty. */
  private cachedWrite: number;
  /**
   * Signal the blocked writer at free >= P instead of free > P. Linux and openvmm use
   * `>`; what Windows uses is an open question (SPEC-NOTES 13.16), so it is a choice.
   */
  inclusiveThreshold = false;
  /** Told of each well-framed packet the reader skips: its offset in the data area, type and flags. */
  onUnacceptable: ((offset: number, type: number, flags: number, why: UnacceptablePacket) => void) | null = null;
  /** Packets skipped so far (unknown type or flag). */
  skipped = 0;

  constructor(mem: RingMemory) {
    this.mem = mem;
    this.committed = mem.index(ControlWord.readIndex);
    this.next = this.committed;
    this.cachedWrite = mem.index(ControlWord.writeIndex);
  }

  isEmpty(): boolean {
    if (this.next !== this.cachedWrite) return false;
    this.cachedWrite = this.mem.index(ControlWord.writeIndex);
    return this.next === this.cachedWrite;
  }

  /**
   * The next unread packet, or null when the ring is empty. Throws on corruption; steps
   * over (and reports) a packet of unknown type or flags, see the header.
   */
  peek(): PacketView | null {
    // (One function with a loop for the rare skipped packet: a call per packet through a
    // wrapper cost an eighth of the reader.)
    for (;;) {
      const m = this.mem;
      const p = this.next;
      if (p === this.cachedWrite) {
        this.cachedWrite = m.index(ControlWord.writeIndex);
        if (p === this.cachedWrite) return null;
      }
      const w = this.cachedWrite;
      const available = m.readable(p, w);
      if (available < Descriptor.size + TRAILER_SIZE) {
        throw new RingCorruptError('short-packet', `only ${available} bytes readable at ${p}`);
      }
      // p is 8-aligned and below the data size, so the first 8 descriptor bytes never wrap.
      const dv = m.dv;
      const w0 = dv.getUint32(p, true);
      const w1 = dv.getUint32(p + 4, true);
      const type = w0 & 0xffff;
      const offset8 = w0 >>> 16;
      const len8 = w1 & 0xffff;
      const flags = w1 >>> 16;
      if (offset8 < 2) throw new RingCorruptError('bad-offset8', `offset8 ${offset8} < 2 at ${p}`);
      if (len8 < offset8) throw new RingCorruptError('bad-len8', `len8 ${len8} < offset8 ${offset8} at ${p}`);
      if (len8 * 8 + TRAILER_SIZE > available) {
        throw new RingCorruptError('len-past-write', `packet at ${p} needs ${len8 * 8 + TRAILER_SIZE} bytes, ${available} readable`);
      }
      if ((flags & ~1) !== 0 || !isKnownPacketType(type)) {
        const next = p + len8 * 8 + TRAILER_SIZE;
        this.next = next >= m.dataSize ? next - m.dataSize : next;
        this.skipped++;
        this.onUnacceptable?.(p, type, flags, isKnownPacketType(type) ? 'unknown-flags' : 'unknown-type');
        continue;
      }
      const v = this.view;
      v.type = type;
      v.flags = flags;
      // The trans id wraps only for a packet starting in the last 8 bytes of the data area.
      v.transId =
        p + Descriptor.size <= m.dataSize
          ? txFromHalves(dv.getUint32(p + Descriptor.transIdLo, true), dv.getUint32(p + Descriptor.transIdHi, true))
          : txFromHalves(m.u32(p + Descriptor.transIdLo), m.u32(p + Descriptor.transIdHi));
      // offset8 * 8 < len8 * 8 < available < dataSize: one subtraction wraps it (no division per packet).
      const payloadAt = p + offset8 * 8;
      v.payloadAt = payloadAt >= m.dataSize ? payloadAt - m.dataSize : payloadAt;
      v.payloadLen = (len8 - offset8) * 8;
      v.footprint = len8 * 8 + TRAILER_SIZE;
      return v;
    }
  }

  /** Copies the peeked packet's payload out of the ring. */
  payload(v: PacketView): Uint8Array {
    return this.mem.copyOut(v.payloadAt, v.payloadLen);
  }

  /** Moves past the peeked packet (not yet visible to the writer). */
  advance(v: PacketView): void {
    // A footprint is below the data size (peek checked it fits what is readable): one
    // subtraction wraps it, where a modulo cost a division per packet.
    const next = this.next + v.footprint;
    this.next = next >= this.mem.dataSize ? next - this.mem.dataSize : next;
  }

  /**
   * Publishes the read index. Returns whether to signal the writer: only when it
   * advertised pending-send-size flow control, is waiting for P bytes, and this read
   * moved the ring from "not more than P free" to "more than P free".
   */
  commit(): boolean {
    if (this.next === this.committed) return false;
    const m = this.mem;
    const consumed = m.readable(this.committed, this.next);
    m.store(ControlWord.readIndex, this.next);
    this.committed = this.next;
    // Some writers store "ring size - 1" meaning "when empty": drop the low bits.
    // Pending is read first: it is almost always 0, and then the feature bits need no load.
    const pending = m.load(ControlWord.pendingSendSize) & ~7;
    if (pending === 0) return false;
    if ((m.load(ControlWord.featureBits) & FEATURE_SUPPORTS_PENDING_SEND_SIZE) === 0) return false;
    // Invariant: the write index is read only after the new read index is published
    // (Atomics are sequentially consistent). Reading it before would miss a writer that
    // published more packets, blocked and set P in between: both "before" and "after"
    // would then look above P, and that writer would never be woken (Linux reads it
    // after publishing too). "Before" is "after" less what this commit consumed.
    const w = m.index(ControlWord.writeIndex);
    const freeAfter = m.dataSize - m.readable(this.committed, w);
    const freeBefore = freeAfter - consumed;
    return this.inclusiveThreshold
      ? freeBefore < pending && freeAfter >= pending
      : freeBefore <= pending && freeAfter > pending;
  }

  /** Set while draining so the writer does not signal for every packet. */
  setInterruptMask(masked: boolean): void {
    this.mem.store(ControlWord.interruptMask, masked ? 1 : 0);
  }

  get readIndex(): number {
    return this.committed;
  }
}
