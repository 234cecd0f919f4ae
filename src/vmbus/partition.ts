// Guest memory: the rings of every channel live here, as on a real partition.
//
// The guest donates each channel's ring memory (one GPADL holding the guest->host ring
// then the host->guest ring, SPEC-NOTES / ring format section 1). The host side only
// ever attaches to memory the guest owns, so saving the VM saves the rings' contents
// for free, and a restore attaches fresh host objects to the same bytes.

import { IncomingRing, OutgoingRing, RingMemory } from './ring.ts';
import { ringBytes } from './ring-layout.ts';

export interface RingSlot {
  ch: number;
  /** byte offset of the guest->host ring (its control page) */
  g2hOffset: number;
  g2hPages: number;
  /** byte offset of the host->guest ring */
  h2gOffset: number;
  h2gPages: number;
}

export class GuestMemory {
  readonly buffer: SharedArrayBuffer;
  readonly slots: readonly RingSlot[];

  constructor(channels: ReadonlyArray<{ ch: number; g2hPages: number; h2gPages: number }>, image?: Uint8Array) {
    const slots: RingSlot[] = [];
    let at = 0;
    for (const c of channels) {
      const g2hOffset = at;
      at += ringBytes(c.g2hPages);
      const h2gOffset = at;
      at += ringBytes(c.h2gPages);
      slots.push({ ch: c.ch, g2hOffset, g2hPages: c.g2hPages, h2gOffset, h2gPages: c.h2gPages });
    }
    this.slots = slots;
    this.buffer = new SharedArrayBuffer(at);
    if (image) {
      if (image.length !== at) throw new RangeError(`guest memory image is ${image.length} bytes, the layout needs ${at}`);
      copyIntoShared(this.buffer, image);
    } else {
      for (const s of slots) {
        new RingMemory(this.buffer, s.g2hOffset, s.g2hPages).initialize();
        new RingMemory(this.buffer, s.h2gOffset, s.h2gPages).initialize();
      }
    }
  }

  /** Whether this memory has exactly `channels`' layout (same channels, same ring sizes, same order). */
  hasLayout(channels: ReadonlyArray<{ ch: number; g2hPages: number; h2gPages: number }>): boolean {
    if (channels.length !== this.slots.length) return false;
    return channels.every((c, i) => {
      const s = this.slots[i]!;
      return s.ch === c.ch && s.g2hPages === c.g2hPages && s.h2gPages === c.h2gPages;
    });
  }

  /**
   * Puts a saved image back, byte for byte, over this memory (same layout): a restore
   * over the VM's own memory, whose old contents nothing reads any more. Cheaper than a
   * new GuestMemory: allocating a SharedArrayBuffer costs several times the copy.
   */
  overwrite(image: Uint8Array): void {
    if (image.length !== this.buffer.byteLength) {
      throw new RangeError(`guest memory image is ${image.length} bytes, the layout needs ${this.buffer.byteLength}`);
    }
    copyIntoShared(this.buffer, image);
  }

  slot(ch: number): RingSlot {
    const s = this.slots.find((x) => x.ch === ch);
    if (!s) throw new RangeError(`no rings for channel ${ch}`);
    return s;
  }

  g2h(ch: number): RingMemory {
    const s = this.slot(ch);
    return new RingMemory(this.buffer, s.g2hOffset, s.g2hPages);
  }
  h2g(ch: number): RingMemory {
    const s = this.slot(ch);
    return new RingMemory(this.buffer, s.h2gOffset, s.h2gPages);
  }

  /** The host's view: it writes host->guest and reads guest->host. */
  hostRings(ch: number): { out: OutgoingRing; in: IncomingRing } {
    return { out: new OutgoingRing(this.h2g(ch)), in: new IncomingRing(this.g2h(ch)) };
  }
  /** The guest's view: it writes guest->host and reads host->guest. */
  guestRings(ch: number): { out: OutgoingRing; in: IncomingRing } {
    return { out: new OutgoingRing(this.g2h(ch)), in: new IncomingRing(this.h2g(ch)) };
  }

  /** A copy of every byte, as a saved VM's memory file would hold it. */
  image(): Uint8Array {
    const out = new Uint8Array(this.buffer.byteLength);
    // 32-bit elements: see copyIntoShared.
    new Int32Array(out.buffer).set(new Int32Array(this.buffer));
    return out;
  }

  /**
   * Every byte, live (not a copy): for an encoder that copies it at once. Nothing may
   * run between taking it and reading it.
   */
  live(): Uint8Array {
    return new Uint8Array(this.buffer);
  }

  /** One ring's raw bytes (control page + data pages), for --dump-rings. */
  ringImage(ch: number, dir: 'g2h' | 'h2g'): Uint8Array {
    const s = this.slot(ch);
    const off = dir === 'g2h' ? s.g2hOffset : s.h2gOffset;
    const pages = dir === 'g2h' ? s.g2hPages : s.h2gPages;
    return new Uint8Array(this.buffer, off, ringBytes(pages)).slice();
  }
}

/**
 * Copies a whole image into shared memory. V8 copies into or out of a SharedArrayBuffer
 * element by element (relaxed atomics), so 32-bit elements copy about four times faster
 * than bytes; a source not 4-aligned in its buffer is first copied somewhere aligned
 * (ring memory is whole pages, so the length is always a multiple of 4).
 */
function copyIntoShared(dst: SharedArrayBuffer, src: Uint8Array): void {
  let words: Int32Array;
  if (src.byteOffset % 4 === 0) {
    words = new Int32Array(src.buffer, src.byteOffset, src.length / 4);
  } else {
    // Through a reused aligned buffer: a fresh one per restore costs its page faults.
    if (alignedScratch.byteLength < src.length) alignedScratch = new ArrayBuffer(src.length);
    new Uint8Array(alignedScratch, 0, src.length).set(src);
    words = new Int32Array(alignedScratch, 0, src.length / 4);
  }
  new Int32Array(dst).set(words);
}
let alignedScratch = new ArrayBuffer(0);
