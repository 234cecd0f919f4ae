// The kernel pool a C driver allocates from on the emulator, checked the way Driver
// Verifier's special pool checks it:
// - every block has guard bytes before and after it; a free (or the end of the run)
//   finds any that changed: an overrun;
// - a freed block is filled with poison and kept in quarantine, not reused at once; when
//   it leaves quarantine the poison must be intact, else something wrote after free;
// - freeing twice, freeing what was never allocated, or with another tag is an error;
// - what is still allocated when the driver unloads is a leak, reported with the tag,
//   size and where it was allocated: the kernel call and the driver entries it was made
//   in, or with RuntimeOptions.allocationStacks the driver's own frames.
//
// Blocks live in the driver's own linear memory above __heap_base. The shim's own
// allocations (request buffers, packet copies) use the pool too, under shim tags, so
// the same guards protect them; they are not the driver's leaks.

import type { Linear } from './linear.ts';
import { LiveBlocks } from './live-blocks.ts';
import { captureStack, framesOf, violation } from './violations.ts';

export const GUARD = 16;
const GUARD_BYTE = 0xfd;
const POISON_BYTE = 0xdd;
// The same bytes four at a time, as int32 (what `word | 0` reads them as). Every block's
// base, and so its guard before it and its first byte, is on a 16-byte boundary above the
// pool's base (which round() puts on one), and a block's end is one too: the guards and
// the poison are whole words but where a block's size is not a multiple of four.
const GUARD_WORD = (GUARD_BYTE * 0x01010101) | 0;
const POISON_WORD = (POISON_BYTE * 0x01010101) | 0;
/**
 * Blocks this long or shorter are zeroed, poisoned and checked here a word at a time in
 * one pass over one view; longer ones through Linear's native fill and compare. Most
 * blocks are a packet's few dozen bytes (several per saved packet, ~1,600 per save point
 * of the 1,000-transaction explore), for which each Linear call's own work cost more
 * than the bytes.
 */
const SMALL = 512;
/** How many freed blocks wait in quarantine before their memory is reused. */
export const QUARANTINE = 256;
/**
 * A block whose total (guards included) is longer than this, when no spare block is its
 * exact size, takes the smallest longer spare and splits it (Pool.fit). Without it, big
 * blocks of ever-new sizes (a counters IOCTL's outputs, 12-40 KB) never reused a freed
 * one and the pool's top grew for the whole run (24.8 MB at the end of the
 * 1,000-transaction C explore, and its live table's slots with it). Small blocks are a
 * few sizes that come back, for which an exact fit is enough and a search would cost.
 */
const BIG = GUARD + SMALL + GUARD;
/** The shortest block (guards and a 16-byte body): a split leaves no remainder shorter. */
const MIN_TOTAL = GUARD + 16 + GUARD;
/** How many freed blocks' records Pool keeps for reuse (Pool.idle). */
const IDLE_RECORDS = 1024;

export interface Allocation {
  at: number;
  size: number;
  tag: number;
  owner: 'driver' | 'shim';
  /** the driver's frames that allocated it, innermost first (read only for a report) */
  readonly site: string[];
}

/** Where the driver was when it allocated: the kernel call, in which entries, outermost first (runtime.ts). */
export interface AllocationPlace {
  readonly call: string;
  readonly entries: readonly string[];
}

/**
 * An allocation whose site is worked out when first read: from its captured stack (the
 * driver's own frames), or else from where the driver was (the kernel call and the
 * driver entries it was made in, innermost first). Once freed it may be reused for a
 * later block (Pool.idle): nothing keeps one past its free.
 */
class LiveBlock implements Allocation {
  // Set by reuse(), which the constructor calls: a new block and a reused one are filled alike.
  at!: number;
  size!: number;
  tag!: number;
  owner!: 'driver' | 'shim';
  private stack!: { stack?: string } | null;
  private place!: AllocationPlace | null;
  /** its site once worked out, or as the snapshot it was revived from had it (PoolImage) */
  private known: string[] | null;
  /** neighbours in allocation order (live-blocks.ts) */
  prev: LiveBlock | null = null;
  next: LiveBlock | null = null;
  constructor(at: number, size: number, tag: number, owner: 'driver' | 'shim', place: AllocationPlace | null, stack: { stack?: string } | null, revived: string[] | null = null) {
    this.reuse(at, size, tag, owner, place, stack);
    this.known = revived;
  }
  /** This object as a new block's (a freed one reused: Pool.place). */
  reuse(at: number, size: number, tag: number, owner: 'driver' | 'shim', place: AllocationPlace | null, stack: { stack?: string } | null): LiveBlock {
    this.at = at;
    this.size = size;
    this.tag = tag;
    this.owner = owner;
    this.place = place;
    this.stack = stack;
    this.known = null;
    return this;
  }
  /**
   * Worked out once per block: every image of the pool (each VM save of a C guest) holds
   * the site of every live driver block, and a block's site never changes while it lives.
   * The same array each time, which the image's readers only read.
   */
  get site(): string[] {
    if (this.known) return this.known;
    let out: string[];
    if (this.stack) out = framesOf(this.stack.stack ?? '', 6);
    else if (!this.place) out = [];
    else {
      // One array per place: an image holds each site once (PoolImage.sites).
      const place = this.place;
      let site = placeSites.get(place);
      if (!site) {
        site = [place.call];
        for (let i = place.entries.length - 1; i >= 0 && site.length < 6; i--) site.push(place.entries[i]!);
        placeSites.set(place, site);
      }
      out = site;
    }
    return (this.known = out);
  }
}

/** The site of each place blocks were allocated from (runtime.ts shares a place between allocations). */
const placeSites = new WeakMap<AllocationPlace, string[]>();

export function tagText(tag: number): string {
  // Pool tags are four characters stored little-endian ('pSmV' reads "VmSp").
  let s = '';
  for (let i = 0; i < 4; i++) {
    const c = (tag >>> (8 * i)) & 0xff;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return s;
}

const round = (n: number): number => (n + 15) & ~15;

/**
 * The pool's own tables as plain data (structured-clonable), for a snapshot of the driver
 * (runtime-image.ts): with the linear memory they are the whole pool. A live block keeps
 * where it was allocated, so a leak found after a restore still names its site.
 *
 * In columns of numbers, not a list per block: a C guest's VM save holds a few hundred
 * live blocks and a full quarantine, and serialising and reading back a small array per
 * block (and the strings of its site) cost several times the typed arrays' copy.
 */
export interface PoolImage {
  top: number;
  /** the live blocks, oldest first, LIVE_FIELDS numbers each: at, size, tag, owner (1: the driver's, 0: the shim's), site (1 + its index in `sites`, 0: none) */
  live: Uint32Array;
  /** the driver blocks' allocation sites, each once */
  sites: string[][];
  /** the quarantine ring's slots, QUARANTINE_FIELDS numbers each: 1 (a freed block) or 0 (empty), at, size, tag */
  quarantine: Uint32Array;
  qNext: number;
  spare: Array<[total: number, bases: Uint32Array]>;
  allocations: number;
}

export const LIVE_FIELDS = 5;
export const QUARANTINE_FIELDS = 4;

export class Pool {
  private readonly mem: Linear;
  private top: number;
  /** the first address the pool may hand out (above the module's data and stack) */
  readonly base: number;
  /** the blocks allocated and not freed, by address, oldest first (live-blocks.ts) */
  readonly live: LiveBlocks<LiveBlock>;
  /**
   * The quarantine ring: QUARANTINE slots of QUARANTINE_FIELDS numbers, as an image holds
   * them (PoolImage.quarantine), of which the first `qSlots` have been used. One typed
   * array rather than a record per slot: every free reads the slot a block left 256 frees
   * earlier, and 256 records scattered in the heap were a cache miss each time.
   */
  private readonly ring = new Uint32Array(QUARANTINE * QUARANTINE_FIELDS);
  private qSlots = 0;
  private qNext = 0;
  /** reusable blocks by rounded size */
  private readonly spare = new Map<number, number[]>();
  /** the spare list last used, and its size (most blocks of a run are one size or two) */
  private spareTotal = -1;
  private spareList: number[] = [];
  /**
   * The big spare blocks (longer than BIG) by base and by end, for a released big block to
   * merge with its free neighbours (Pool.release): split blocks merged again, so a later
   * longer block finds room. Derived from `spare` (restore() builds them again from it).
   */
  private readonly bigAt = new Map<number, number>();
  private readonly bigEnd = new Map<number, number>();
  allocations = 0;
  /**
   * Records of freed blocks: a block's LiveBlock is reused rather than made anew. The pool
   * makes and drops several per packet (the shim's copy of it, a SavePacket buffer, the
   * driver's own blocks), and so many short-lived objects linked into the long-lived
   * tables cost the garbage collector more than the pool's own work.
   */
  private readonly idle: LiveBlock[] = [];

  private readonly where: () => AllocationPlace;
  private readonly stacks: boolean;

  /** `where`: the driver's place now; `stacks`: capture each driver allocation's stack too (RuntimeOptions.allocationStacks). */
  constructor(mem: Linear, heapBase: number, where: () => AllocationPlace = () => ({ call: '', entries: [] }), stacks = false) {
    this.mem = mem;
    this.top = round(heapBase);
    this.where = where;
    this.stacks = stacks;
    this.base = this.top;
    this.live = new LiveBlocks(this.base);
  }

  /**
   * The pool's tables now (the blocks themselves are in linear memory). `sites` false:
   * without the driver blocks' allocation sites (a state key, which leaves them out).
   */
  image(sites = true): PoolImage {
    const blocks = this.live.values();
    const live = new Uint32Array(blocks.length * LIVE_FIELDS);
    const siteList: string[][] = [];
    // Each site once, by content (blocks from one place share its array: looked up by it first).
    const siteIndex = new Map<string[], number>();
    const siteByText = new Map<string, number>();
    blocks.forEach((a, i) => {
      const o = i * LIVE_FIELDS;
      live[o] = a.at;
      live[o + 1] = a.size;
      live[o + 2] = a.tag;
      live[o + 3] = a.owner === 'driver' ? 1 : 0;
      if (sites && a.owner === 'driver') {
        const site = a.site;
        let n = siteIndex.get(site);
        if (n === undefined) {
          const text = site.join('\n');
          n = siteByText.get(text);
          if (n === undefined) siteByText.set(text, (n = siteList.push(site) - 1));
          siteIndex.set(site, n);
        }
        live[o + 4] = n + 1;
      }
    });
    const quarantine = this.ring.slice(0, this.qSlots * QUARANTINE_FIELDS);
    return {
      top: this.top,
      live,
      sites: siteList,
      quarantine,
      qNext: this.qNext,
      spare: [...this.spare].map(([total, bases]) => [total, Uint32Array.from(bases)]),
      allocations: this.allocations,
    };
  }

  /**
   * The tables as image(false) holds them, as numbers, each list after its length, for a
   * state key (shim-key.ts keyRuntimeTables): equal numbers, equal tables. Read in place:
   * an image built for each key was a new array per live block, twice per save point.
   */
  keyNumbers(num: (n: number) => void): void {
    num(this.top);
    num(this.live.size);
    for (const a of this.live.values()) {
      num(a.at);
      num(a.size);
      num(a.tag);
      num(a.owner === 'driver' ? 1 : 0);
    }
    num(this.qNext);
    num(this.qSlots);
    const ring = this.ring;
    for (let o = 0; o < this.qSlots * QUARANTINE_FIELDS; o += QUARANTINE_FIELDS) {
      if (ring[o] === 0) num(-1);
      else {
        num(ring[o + 1]!);
        num(ring[o + 2]!);
        num(ring[o + 3]!);
      }
    }
    num(this.spare.size);
    for (const [total, bases] of this.spare) {
      num(total);
      num(bases.length);
      for (const b of bases) num(b);
    }
  }

  /**
   * Puts the tables of `img` back (over linear memory restored from the same snapshot).
   * Invariant: pool.image() then restore(image) gives a pool that allocates, frees and
   * checks exactly as the original would from that point.
   */
  restore(img: PoolImage): void {
    this.top = img.top;
    this.live.clear();
    const live = img.live;
    for (let o = 0; o < live.length; o += LIVE_FIELDS) {
      const site = live[o + 4]! === 0 ? null : img.sites[live[o + 4]! - 1]!;
      this.live.add(new LiveBlock(live[o]!, live[o + 1]!, live[o + 2]!, live[o + 3] === 1 ? 'driver' : 'shim', null, null, site));
    }
    // (An image holds at most QUARANTINE slots: runtime-image.ts checks it.)
    this.ring.fill(0);
    this.ring.set(img.quarantine);
    this.qSlots = img.quarantine.length / QUARANTINE_FIELDS;
    this.qNext = img.qNext;
    this.spare.clear();
    this.spareTotal = -1;
    this.bigAt.clear();
    this.bigEnd.clear();
    for (const [total, bases] of img.spare) {
      this.spare.set(total, Array.from(bases));
      if (total > BIG) for (const b of bases) this.indexBig(b, total);
    }
    this.allocations = img.allocations;
  }

  /** ExAllocatePool2 / kmalloc: zeroed memory (ExAllocatePool2 zeroes unless told not to). */
  alloc(size: number, tag: number, owner: 'driver' | 'shim'): number {
    // The guards, the padding after the block and its own bytes zeroed: each byte written once.
    return this.place(size, tag, owner, true);
  }

  /**
   * A shim block holding a copy of `src` (a packet handed to the driver, a buffer KMCL
   * lends): as alloc then a write of every byte, without zeroing bytes about to be written.
   */
  allocCopy(src: Uint8Array, tag: number): number {
    const at = this.place(src.length, tag, 'shim', false);
    this.mem.write(at, src);
    return at;
  }

  /** A block of `size` bytes with its guards set, and its own bytes zeroed (`zero`) or left for the caller to fill, every one. */
  private place(size: number, tag: number, owner: 'driver' | 'shim', zero: boolean): number {
    const body = round(Math.max(size, 1));
    const total = GUARD + body + GUARD;
    let base = this.spares(total)?.pop();
    if (base !== undefined && total > BIG) this.unindexBig(base, total);
    if (base === undefined && total > BIG) base = this.fit(total);
    if (base === undefined) {
      base = this.top;
      this.top += total;
      this.mem.ensure(this.top);
    }
    const at = base + GUARD;
    this.frame(base, size, base + total, zero);
    const driver = owner === 'driver';
    const place = driver ? this.where() : null;
    const stack = driver && this.stacks ? captureStack() : null;
    const idle = this.idle.pop();
    this.live.add(idle !== undefined ? idle.reuse(at, size, tag, owner, place, stack) : new LiveBlock(at, size, tag, owner, place, stack));
    this.allocations++;
    return at;
  }

  /**
   * Writes the block at `base` (ending at `end`, both on 16-byte boundaries): its guard
   * before it, its `size` bytes zeroed when `zero` (else left: allocCopy writes every one
   * of them next), and the guard from its last byte to `end` (the padding to its 16-byte
   * end included), a word at a time; a long block's bytes are zeroed natively.
   */
  private frame(base: number, size: number, end: number, zero: boolean): void {
    const at = base + GUARD;
    const last = at + size;
    const whole = last >>> 2; // the word holding the block's last bytes when its size is not whole words, else the guard's first
    if (zero && size > SMALL) this.mem.fill(0, at, whole * 4);
    const w = this.mem.words;
    const g = GUARD_WORD;
    let i = base >>> 2;
    w[i] = g;
    w[i + 1] = g;
    w[i + 2] = g;
    w[i + 3] = g;
    i += 4;
    if (zero && size <= SMALL) for (; i < whole; i++) w[i] = 0;
    i = whole;
    // A word shared by the block's last bytes (zero, or the copy's, written after this) and the guard: little-endian, the block's bytes are its low ones.
    const r = last & 3;
    if (r !== 0) w[i++] = g << (8 * r);
    for (const e = end >>> 2; i < e; i++) w[i] = g;
  }

  /** Whether the block at `at` of `size` bytes has both its guards intact (frame wrote them). */
  private framed(at: number, size: number): boolean {
    const w = this.mem.peekWords();
    const g = GUARD_WORD;
    let i = (at >>> 2) - 4;
    if ((w[i]! | 0) !== g || (w[i + 1]! | 0) !== g || (w[i + 2]! | 0) !== g || (w[i + 3]! | 0) !== g) return false;
    const last = at + size;
    i = last >>> 2;
    const r = last & 3;
    if (r !== 0 && w[i++]! >>> (8 * r) !== g >>> (8 * r)) return false;
    for (const e = (at + round(Math.max(size, 1)) + GUARD) >>> 2; i < e; i++) if ((w[i]! | 0) !== g) return false;
    return true;
  }

  /** The `n` bytes at `at` (a freed block's, whole words) poisoned. */
  private poison(at: number, n: number): void {
    if (n > SMALL) {
      this.mem.fill(POISON_BYTE, at, at + n);
      return;
    }
    const w = this.mem.words;
    const p = POISON_WORD;
    for (let i = at >>> 2, e = (at + n) >>> 2; i < e; i++) w[i] = p;
  }

  /** Whether the `n` bytes at `at` (a freed block's, whole words) are all poison still. */
  private poisoned(at: number, n: number): boolean {
    if (n > SMALL) return this.mem.allBytes(at, at + n, POISON_BYTE);
    const w = this.mem.peekWords();
    const p = POISON_WORD;
    for (let i = at >>> 2, e = (at + n) >>> 2; i < e; i++) if ((w[i]! | 0) !== p) return false;
    return true;
  }

  /** ExFreePoolWithTag / kfree. `tag` null: the API takes none (kfree). */
  free(at: number, tag: number | null, call: string): void {
    const a = this.live.get(at);
    if (!a) {
      // Still in quarantine: freed before (the ring is searched only for this report).
      const ring = this.ring;
      for (let o = 0; o < this.qSlots * QUARANTINE_FIELDS; o += QUARANTINE_FIELDS) {
        if (ring[o] === 1 && ring[o + 1] === at) throw violation('pool.double-free', call, `0x${at.toString(16)} tag '${tagText(ring[o + 3]!)}' size ${ring[o + 2]!}`, 'the block was already freed');
      }
      throw violation('pool.bad-free', call, `0x${at.toString(16)}`, 'the pool never allocated this address');
    }
    if (tag !== null && tag !== a.tag) {
      throw violation('pool.wrong-tag', call, `0x${at.toString(16)} tag '${tagText(a.tag)}'`, `freed with tag '${tagText(tag)}'`);
    }
    this.checkGuards(a, call);
    this.live.delete(at);
    const size = a.size;
    const blockTag = a.tag;
    if (this.idle.length < IDLE_RECORDS) this.idle.push(a);
    this.poison(at, round(Math.max(size, 1)));
    // The quarantine is a ring of QUARANTINE slots: the oldest block leaves as a new one
    // enters, in the same slot.
    const q = this.qNext;
    this.qNext = (q + 1) % QUARANTINE;
    if (q >= this.qSlots) this.qSlots = q + 1;
    const ring = this.ring;
    const o = q * QUARANTINE_FIELDS;
    const held = ring[o] === 1;
    const oldAt = ring[o + 1]!;
    const oldSize = ring[o + 2]!;
    const oldTag = ring[o + 3]!;
    ring[o] = 1;
    ring[o + 1] = at;
    ring[o + 2] = size;
    ring[o + 3] = blockTag;
    if (held) this.release(oldAt, oldSize, oldTag, call);
  }

  /** A block leaves quarantine: its poison is checked, and its memory may be handed out again. */
  private release(at: number, size: number, tag: number, call: string): void {
    this.checkPoison(at, size, tag, call);
    let total = GUARD + round(Math.max(size, 1)) + GUARD;
    let base = at - GUARD;
    if (total > BIG) {
      // Merged with a big spare block just after it and one just before it, if any.
      const after = this.bigAt.get(base + total);
      if (after !== undefined) {
        this.takeSpare(base + total, after);
        total += after;
      }
      const before = this.bigEnd.get(base);
      if (before !== undefined) {
        const t = base - before;
        this.takeSpare(before, t);
        base = before;
        total += t;
      }
      this.indexBig(base, total);
    }
    let list = this.spares(total);
    if (!list) this.spare.set(total, (list = []));
    list.push(base);
  }

  private indexBig(base: number, total: number): void {
    this.bigAt.set(base, total);
    this.bigEnd.set(base + total, base);
  }

  private unindexBig(base: number, total: number): void {
    this.bigAt.delete(base);
    this.bigEnd.delete(base + total);
  }

  /** The big spare block at `base` of `total` bytes out of the tables (merged into another); a list left empty is dropped. */
  private takeSpare(base: number, total: number): void {
    this.unindexBig(base, total);
    const list = this.spare.get(total)!;
    // (Always there: the index holds only what the lists hold. Checked all the same: splice(-1) would take another block.)
    const i = list.lastIndexOf(base);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) {
      this.spare.delete(total);
      if (this.spareTotal === total) this.spareTotal = -1;
    }
  }

  /**
   * The base of a spare block for a big block of `total` bytes, none being that size: the
   * smallest spare longer by at least MIN_TOTAL, split, its remainder past `total` kept as
   * a spare of its own (its bytes as they were: poison and the old end guard, all written
   * again by frame() when it is handed out). Undefined when none is long enough.
   * Depends only on the spare table's contents, which an image holds: a restored pool
   * picks as the original would. A list left empty is dropped from the table.
   */
  private fit(total: number): number | undefined {
    let best = -1;
    for (const [t, list] of this.spare) if (list.length > 0 && t - total >= MIN_TOTAL && (best < 0 || t < best)) best = t;
    if (best < 0) return undefined;
    const list = this.spare.get(best)!;
    const base = list.pop()!;
    this.unindexBig(base, best);
    if (list.length === 0) {
      this.spare.delete(best);
      if (this.spareTotal === best) this.spareTotal = -1;
    }
    const rest = best - total;
    let spares = this.spares(rest);
    if (!spares) this.spare.set(rest, (spares = []));
    spares.push(base + total);
    if (rest > BIG) this.indexBig(base + total, rest);
    return base;
  }

  /** The reusable blocks of `total` bytes (guards included), if any were ever freed. */
  private spares(total: number): number[] | undefined {
    if (total === this.spareTotal) return this.spareList;
    const list = this.spare.get(total);
    if (list) {
      this.spareTotal = total;
      this.spareList = list;
    }
    return list;
  }

  private checkPoison(at: number, size: number, tag: number, call: string): void {
    const end = at + round(Math.max(size, 1));
    if (this.poisoned(at, end - at)) return;
    const b = this.mem.bytes;
    for (let i = at; i < end; i++) {
      if (b[i] !== POISON_BYTE) {
        throw violation('pool.write-after-free', call, `0x${at.toString(16)} tag '${tagText(tag)}' size ${size}`, `byte ${i - at} of a freed block was written after the free`);
      }
    }
  }

  checkGuards(a: Allocation, call: string): void {
    if (this.framed(a.at, a.size)) return;
    const body = round(Math.max(a.size, 1));
    const b = this.mem.bytes;
    for (let i = a.at - GUARD; i < a.at; i++) {
      if (b[i] !== GUARD_BYTE) throw violation('pool.overrun', call, `0x${a.at.toString(16)} tag '${tagText(a.tag)}' size ${a.size}`, `the guard before the block was overwritten (${a.at - i} bytes before it)`);
    }
    for (let i = a.at + a.size; i < a.at + body + GUARD; i++) {
      if (b[i] !== GUARD_BYTE) throw violation('pool.overrun', call, `0x${a.at.toString(16)} tag '${tagText(a.tag)}' size ${a.size}`, `written ${i - a.at - a.size + 1} byte(s) past the end of the block`);
    }
  }

  /** Every check Driver Verifier would make when the driver unloads: guards, poison. */
  verifyAll(call: string): void {
    for (const a of this.live.values()) this.checkGuards(a, call);
    const ring = this.ring;
    for (let o = 0; o < this.qSlots * QUARANTINE_FIELDS; o += QUARANTINE_FIELDS) if (ring[o] === 1) this.checkPoison(ring[o + 1]!, ring[o + 2]!, ring[o + 3]!, call);
  }

  /** The driver's allocations still live (shim allocations are the shim's business). */
  driverLeaks(): Allocation[] {
    return [...this.live.values()].filter((a) => a.owner === 'driver');
  }
}
