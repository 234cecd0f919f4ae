// A table by transaction id: the packets a channel has sent and still waits on, and the
// property checker's open records (check/properties.ts).
//
// Every request with WAIT_FOR_COMPLETION is added here when it reaches the ring and
// removed when its completion comes back: a set, a get and a delete per round trip. A
// JS Map spent ~70 ns on those three (its ordered hash keeps deleted entries until it
// rehashes), about a seventh of a whole round trip. The ids a channel hands out
// are consecutive, so an open-addressing table indexed by the id's low bits puts each in
// its own slot with no probing at all; ids restored from a saved state or far apart
// still work, they just probe.
//
// Invariants (tested as properties against a Map in test/vmbus/trans-table.test.ts):
// - linear probing in Robin Hood order with backward-shift deletion: every key sits at
//   or after its home slot with no empty slot between, and along a run the distance
//   from home grows by at most one per slot. A lookup stops at an empty slot or at an
//   entry nearer its home than the key would be; a delete shifts back only the entries
//   past their home, so deleting an id handed out in order moves nothing;
// - the table is at most half full, so probe runs stay short and a free slot exists;
// - iteration is by ascending id. A channel hands ids out in increasing order and a
//   restore re-adds them sorted, so that is also the order they were added in.
// - ids from 2^53 on (bigints, tx-id.ts) live in a side Map, sorted when walked: they
//   come after every number id, so ascending order holds across both.

import { compareTx, type TxId } from './tx-id.ts';

/** A hash table from transaction id (a non-negative integer) to an object (a packet, a record). */
export class TransactionTable<V extends object> {
  /**
   * A plain array, not a Float64Array: a channel is created per restore, and a typed
   * array this size would be a separate allocation outside the JS heap. Made of doubles
   * from the start (see emptyKeys).
   */
  private keys: number[];
  /** undefined = empty slot (values are objects, never undefined). */
  private vals: (V | undefined)[];
  private mask: number;
  private count = 0;
  /** Ids held as bigints (>= 2^53): rare, so a plain Map. */
  private big: Map<bigint, V> | null = null;

  constructor(capacity = 32) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.keys = emptyKeys(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.big === null ? this.count : this.count + this.big.size;
  }

  /** The home slot of id `k`: its low bits (ToInt32 keeps them for any integer up to 2^53). */
  private home(k: number): number {
    return k & this.mask;
  }

  /** How far the entry in slot `i` sits past its home slot. */
  private distance(i: number): number {
    return (i - (this.keys[i]! & this.mask)) & this.mask;
  }

  private find(k: number): number {
    const mask = this.mask;
    for (let i = this.home(k), d = 0; ; i = (i + 1) & mask, d++) {
      if (this.vals[i] === undefined) return -1;
      if (this.keys[i] === k) return i;
      // Robin Hood order: k would have displaced an entry nearer its home than k is.
      if (this.distance(i) < d) return -1;
    }
  }

  get(k: TxId): V | undefined {
    if (typeof k !== 'number') return this.big?.get(k);
    const i = this.find(k);
    return i < 0 ? undefined : this.vals[i];
  }

  has(k: TxId): boolean {
    if (typeof k !== 'number') return this.big?.has(k) ?? false;
    return this.find(k) >= 0;
  }

  /** Adds or replaces the packet for id `k`. */
  set(k: TxId, v: V): this {
    if (typeof k !== 'number') {
      (this.big ??= new Map()).set(k, v);
      return this;
    }
    const at = this.find(k);
    if (at >= 0) {
      this.vals[at] = v;
      return this;
    }
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const mask = this.mask;
    const keys = this.keys;
    const vals = this.vals;
    let key = k;
    let val = v;
    for (let i = this.home(key), d = 0; ; i = (i + 1) & mask, d++) {
      if (vals[i] === undefined) {
        keys[i] = key;
        vals[i] = val;
        this.count++;
        return this;
      }
      // Robin Hood: the entry nearer its home gives up its slot and moves on.
      const theirs = this.distance(i);
      if (theirs < d) {
        const k2 = keys[i]!;
        const v2 = vals[i]!;
        keys[i] = key;
        vals[i] = val;
        key = k2;
        val = v2;
        d = theirs;
      }
    }
  }

  delete(k: TxId): boolean {
    if (typeof k !== 'number') return this.big?.delete(k) ?? false;
    let hole = this.find(k);
    if (hole < 0) return false;
    const mask = this.mask;
    const keys = this.keys;
    const vals = this.vals;
    // Backward shift: the entries after the hole that are past their home move back one,
    // up to the first that is at home (or an empty slot). Ids handed out in order are
    // all at home, so this stops at once.
    for (let j = (hole + 1) & mask; vals[j] !== undefined && this.distance(j) > 0; j = (j + 1) & mask) {
      keys[hole] = keys[j]!;
      vals[hole] = vals[j];
      hole = j;
    }
    vals[hole] = undefined;
    this.count--;
    return true;
  }

  clear(): void {
    this.big = null;
    if (this.count === 0) return;
    this.vals.fill(undefined);
    this.count = 0;
  }

  /** The packets by ascending id (a copy: the table may change while it is walked). */
  values(): V[] {
    const out: V[] = [];
    this.forEach((v) => out.push(v));
    return out;
  }

  /** The ids, ascending. */
  ids(): TxId[] {
    const out: TxId[] = [];
    this.forEach((_, k) => out.push(k));
    return out;
  }

  /** Calls `fn` for each entry in no particular order (one pass); `fn` must not change the table. */
  forEachUnordered(fn: (v: V, k: TxId) => void): void {
    if (this.big !== null) for (const [k, v] of this.big) fn(v, k);
    if (this.count === 0) return;
    const keys = this.keys;
    const vals = this.vals;
    for (let i = 0; i <= this.mask; i++) {
      const v = vals[i];
      if (v !== undefined) fn(v, keys[i]!);
    }
  }

  /**
   * Calls `fn` for each entry by ascending id; `fn` must not change the table. Ids handed
   * out in order sit in ascending slots from the smallest one's, wrapping once, so the
   * walk starts there and sorts only when the ids are not like that.
   */
  forEach(fn: (v: V, k: TxId) => void): void {
    this.forEachNumber(fn);
    if (this.big !== null && this.big.size > 0) {
      const ks = [...this.big.keys()].sort(compareTx);
      for (const k of ks) fn(this.big.get(k)!, k);
    }
  }

  private forEachNumber(fn: (v: V, k: number) => void): void {
    if (this.count === 0) return;
    const keys = this.keys;
    const vals = this.vals;
    const cap = this.mask + 1;
    // One pass finds the smallest id's slot and counts the descents met walking the slots
    // round: a rotation of an ascending sequence has exactly one (largest -> smallest).
    let start = -1;
    let first = -1;
    let prev = -1;
    let descents = 0;
    for (let i = 0; i < cap; i++) {
      if (vals[i] === undefined) continue;
      const k = keys[i]!;
      if (start < 0) first = k;
      else if (k < prev) descents++;
      if (start < 0 || k < keys[start]!) start = i;
      prev = k;
    }
    if (first < prev) descents++;
    if (descents <= 1) {
      for (let n = 0, i = start; n < cap; n++, i = (i + 1) & this.mask) {
        const v = vals[i];
        if (v !== undefined) fn(v, keys[i]!);
      }
      return;
    }
    const slots: number[] = [];
    for (let i = 0; i < cap; i++) if (vals[i] !== undefined) slots.push(i);
    slots.sort((a, b) => keys[a]! - keys[b]!);
    for (const i of slots) fn(vals[i]!, keys[i]!);
  }

  /** Makes room for `n` entries in all, so that adding them does not regrow the table step by step. */
  reserve(n: number): void {
    let cap = this.mask + 1;
    while ((n + 1) * 2 > cap) cap *= 2;
    if (cap > this.mask + 1) this.rehash(cap);
  }

  private grow(): void {
    this.rehash((this.mask + 1) * 2);
  }

  private rehash(cap: number): void {
    const keys = this.keys;
    const vals = this.vals;
    this.keys = emptyKeys(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) {
      const v = vals[i];
      if (v !== undefined) this.set(keys[i]!, v);
    }
  }
}

/**
 * Key slots for a table of `cap`. Filled with NaN, not 0: an array of small integers is
 * stored as such until the first id V8 holds as a double (2^30 and up, or one computed
 * as a double) makes it convert the whole array, a copy per table.
 */
function emptyKeys(cap: number): number[] {
  return new Array<number>(cap).fill(Number.NaN);
}
