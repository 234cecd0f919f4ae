// The pool's table of live blocks (pool.ts): found by address, walked in the order they
// were allocated.
//
// A Map keyed by address did both, but a block lives for one packet on the shim's
// receive path (the copy of an incoming packet the driver completes inline), and a Map
// that gains and loses an entry per packet spent more on its set, get and delete than
// the rest of the pool (the rows it deletes stay until it rehashes). Every block starts
// on a 16-byte boundary above the pool's base, so a block is found by its slot, (address
// - base) / 16, in an array; the allocation order is a list through the blocks
// themselves (prev, next), which an add or a delete keeps in a few stores.
//
// Invariant: values() yields the live blocks in the order they were added, each once,
// exactly as a Map's values() would after the same adds and deletes; get(at) is the
// block added at `at` and not deleted since, else undefined, for any number `at`
// (test/devices/wasm/live-blocks.test.ts).

/** What the table needs of a block: where it starts, and its links in allocation order. */
export interface Linked<B> {
  readonly at: number;
  prev: B | null;
  next: B | null;
}

/** Slots the array gains at once when a block lands past its end (it stays a packed array, never a dictionary). */
const GROW = 1024;

export class LiveBlocks<B extends Linked<B>> {
  private readonly base: number;
  /** live blocks by slot; undefined where none starts */
  private slots: Array<B | undefined> = [];
  private first: B | null = null;
  private last: B | null = null;
  private count = 0;

  /** `base`: the pool's first address (16-aligned); every block's `at` is base + 16k. */
  constructor(base: number) {
    this.base = base;
  }

  get size(): number {
    return this.count;
  }

  /** The slot of an address, or -1 for one no block can start at. */
  private slot(at: number): number {
    const off = at - this.base;
    // A shift, not a division (an index that is a small integer, not a float, on this
    // per-packet path); it gives back `off` only for a whole multiple of 16 in [0, 2^32).
    const i = off >>> 4;
    return i * 16 === off ? i : -1;
  }

  get(at: number): B | undefined {
    const i = this.slot(at);
    return i >= 0 && i < this.slots.length ? this.slots[i] : undefined;
  }

  has(at: number): boolean {
    return this.get(at) !== undefined;
  }

  /** Adds a block (its address must not be live). */
  add(b: B): void {
    const i = this.slot(b.at);
    if (i < 0) throw new Error(`pool: a block at 0x${b.at.toString(16)} is not on a 16-byte boundary above 0x${this.base.toString(16)}`);
    // The slot is looked at once (not through get, which works it out again): two per packet.
    const slots = this.slots;
    if (i < slots.length) {
      if (slots[i] !== undefined) throw new Error(`pool: a block at 0x${b.at.toString(16)} is live already`);
    } else {
      // Grown a stretch at a time with holes filled: an index far past the end would turn
      // the array into a dictionary.
      while (i >= slots.length) for (let k = 0; k < GROW; k++) slots.push(undefined);
    }
    slots[i] = b;
    b.prev = this.last;
    b.next = null;
    if (this.last) this.last.next = b;
    else this.first = b;
    this.last = b;
    this.count++;
  }

  /** Removes the live block at `at`; returns it, or undefined when none is live there. */
  delete(at: number): B | undefined {
    const i = this.slot(at);
    const b = i >= 0 && i < this.slots.length ? this.slots[i] : undefined;
    if (b === undefined) return undefined;
    this.slots[i] = undefined;
    if (b.prev) b.prev.next = b.next;
    else this.first = b.next;
    if (b.next) b.next.prev = b.prev;
    else this.last = b.prev;
    b.prev = b.next = null;
    this.count--;
    return b;
  }

  clear(): void {
    // Only the live blocks' slots are emptied: the array keeps its length. Dropping it made
    // every restore of a C guest's pool grow it again a slot at a time up to its highest
    // block (60% of a c-linux explore's CPU, 3.5x the time of the walk before this array).
    for (let b = this.first; b !== null; b = b.next) this.slots[this.slot(b.at)] = undefined;
    this.first = this.last = null;
    this.count = 0;
  }

  /** The live blocks, oldest first (a copy: the caller may free blocks as it goes). */
  values(): B[] {
    const out: B[] = [];
    for (let b = this.first; b !== null; b = b.next) out.push(b);
    return out;
  }
}
