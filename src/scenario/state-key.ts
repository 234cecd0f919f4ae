// A run's state flattened into a comparable key, for `bench explore`.
//
// Two runs of one scenario and seed that have equal keys at the same save point go on
// identically from there: the same tasks are ready, the seeded schedule picks the same
// ones, the same events are written. So when a VM operation leaves the key as it found
// it, the schedule with that operation is the base run plus the operation's own events,
// and explore need not run it to the end (src/check/explore.ts).
//
// The key is built by walking the live objects (guest driver state, host VSPs and their
// KMCL channels, ring endpoints) instead of from a hand-kept list of fields: a field
// added later is in the key without anyone remembering to add it. A field wrongly in
// the key only costs speed (explore runs that schedule in full); a field wrongly left
// out could hide a bug. So what is left out is listed in IGNORED_FIELDS, each with why
// it cannot change what happens next. The large per-transaction collections are keyed
// by faster functions of their own (run-key.ts).

import type { TxId } from '../vmbus/tx-id.ts';
import { TransactionTable } from '../vmbus/trans-table.ts';

export const IGNORED_FIELDS: ReadonlySet<string> = new Set([
  // Ring endpoints' caches of the other side's index, re-read from guest memory when stale.
  'cachedRead',
  'cachedWrite',
  // A ring endpoint's scratch descriptor view, rewritten by every peek.
  'view',
  // A ring endpoint's memory: guest memory is in the key once, as bytes.
  'mem',
  // A ring writer's note of the last footprint that did not fit, for its callers; the
  // emulated drivers work out what they wait for themselves.
  'lastNeeded',
  // Statistics: nothing decides anything on them.
  'counters',
  // Packet object numbers only name packets in usage-error messages. (Every other `id`,
  // a channel's, is fixed for the run.)
  'nextPacketId',
  'id',
  // Where events go, not state (its sequence numbers count the operation's own events).
  'sink',
  // The time a guest image was taken: read only when an image is revived, and set anew
  // by every save.
  'takenAt',
  // The guest driver's index of its channel states by number (they are keyed in order),
  // its memo of the last lookup in it, and the drivers' scratch for a message's digest.
  'byCh',
  'lastCh',
  'lastC',
  'lastRings',
  'recvDigest',
  'sendDigest',
  // Fixed for the whole run (the executor keys which faults have fired).
  'choices',
  'faults',
]);

const MAX_DEPTH = 64;

/** What kind of value the numbers that follow describe. */
const TAG = {
  undef: 0, null: 1, false: 2, true: 3, num: 4, str: 5, fn: 6, ref: 7, arr: 8, map: 9, set: 10, obj: 11, bytes: 12, shared: 13, fifo: 14, custom: 15,
} as const;

export interface StateKeyOptions {
  explain?: boolean | undefined;
  /** numbers to make room for at once (a key of the same run a moment ago is a good guess) */
  sizeHint?: number | undefined;
  overrides?: ReadonlyMap<object, Readonly<Record<string, unknown>>> | undefined;
  custom?: ReadonlyMap<object, (k: StateKey) => void> | undefined;
}

/** A flat key: numbers and strings in walk order, plus byte arrays compared by content. */
export class StateKey {
  /** The numbers, in a typed array so that growing and comparing them is cheap. */
  private nums: Float64Array;
  private count = 0;
  /**
   * Strings and byte arrays, the first strCount / byteCount of each. Emptied by count,
   * not by length: an array cut to length 0 lets its storage go, and refilling it to a
   * few thousand entries at every key was most of what keying allocated.
   */
  private readonly strs: string[] = [];
  private strCount = 0;
  private readonly bytes: Uint8Array[] = [];
  private byteCount = 0;
  /** The copies `data` made (never `dataRef`'s arrays, which belong to the run). */
  private copies: Uint8Array[] = [];
  /** Copies made for the key this one was before `reuse`, taken again when they fit. */
  private spare: Uint8Array[] = [];
  private readonly seen = new Map<object, number>();
  private depth = 0;
  /** With `explain`: for each number, the field path it was written under. */
  private labels: string[] | null = null;
  private readonly path: string[] = [];
  /** Fields to key with another value than they hold (run-key.ts says why). */
  private overrides: ReadonlyMap<object, Readonly<Record<string, unknown>>> | null = null;
  /** Objects keyed by a function of their own instead of the walk (run-key.ts). */
  private custom: ReadonlyMap<object, (k: StateKey) => void> | null = null;

  constructor(opts: StateKeyOptions = {}) {
    this.nums = new Float64Array(Math.max(64, opts.sizeHint ?? 0));
    this.reuse(opts);
  }

  /**
   * Empties the key to build another in its buffers (explore keys thousands of states in
   * a row; allocating each key's arrays and guest memory copy anew was a tenth of it).
   * Whatever was read from the key before is invalid after.
   */
  reuse(opts: StateKeyOptions = {}): this {
    this.count = 0;
    this.strCount = 0;
    this.byteCount = 0;
    this.spare = this.copies;
    this.copies = [];
    this.seen.clear();
    this.depth = 0;
    this.labels = opts.explain ? [] : null;
    this.path.length = 0;
    this.overrides = opts.overrides ?? null;
    this.custom = opts.custom ?? null;
    if (opts.sizeHint !== undefined && opts.sizeHint > this.nums.length) this.nums = new Float64Array(opts.sizeHint);
    return this;
  }

  num(n: number): void {
    this.put(n);
  }

  /** A transaction id (tx-id.ts): a number as itself, a bigint as a marker and its halves. */
  tx(v: TxId): void {
    if (typeof v === 'number') {
      this.put(v);
      return;
    }
    // Ids are non-negative, so -3 cannot be taken for one.
    this.put(-3);
    this.put(Number(v >> 32n));
    this.put(Number(v & 0xffffffffn));
  }

  private put(a: number): void {
    if (this.count === this.nums.length) this.grow();
    this.nums[this.count++] = a;
  }

  private put2(a: number, b: number): void {
    if (this.count + 2 > this.nums.length) this.grow();
    this.nums[this.count++] = a;
    this.nums[this.count++] = b;
  }

  private put3(a: number, b: number, c: number): void {
    if (this.count + 3 > this.nums.length) this.grow();
    this.nums[this.count++] = a;
    this.nums[this.count++] = b;
    this.nums[this.count++] = c;
  }

  private grow(): void {
    const bigger = new Float64Array(this.nums.length * 2);
    bigger.set(this.nums);
    this.nums = bigger;
  }

  /** How many numbers the key holds. */
  get size(): number {
    return this.count;
  }

  /** The numbers written so far (a view: do not keep it past the next write). */
  numbers(): Float64Array {
    return this.nums.subarray(0, this.count);
  }

  str(s: string): void {
    this.strs[this.strCount++] = s;
  }

  private putBytes(b: Uint8Array): void {
    this.bytes[this.byteCount++] = b;
  }

  /** Bytes by content (copied: the key must not change when the run goes on). */
  data(b: Uint8Array): void {
    this.put2(TAG.bytes, b.length);
    // set() into an array of our own: slice() of shared memory copies byte by byte, 4x slower.
    // In the buffer of the spare copy at this place when it is large enough: the C guest's
    // memory runs change length from one save point to the next, and a new array maps
    // fresh pages, dearer than the copy.
    const old = this.spare[this.copies.length];
    const copy = old !== undefined && old.buffer.byteLength >= b.length ? new Uint8Array(old.buffer, 0, b.length) : new Uint8Array(b.length);
    copy.set(b);
    this.copies.push(copy);
    this.putBytes(copy);
  }

  /** Bytes by content, by reference: for arrays that do not change while the key is in use. */
  dataRef(b: Uint8Array): void {
    this.put2(TAG.bytes, b.length);
    this.putBytes(b);
  }

  /** Any value: primitives, arrays, Maps, Sets, typed arrays, FIFOs and objects, cycles allowed. */
  value(v: unknown): void {
    this.walk(v);
    this.label();
  }

  /** With `explain`: the numbers written since the last label were written at this path. */
  private label(): void {
    if (!this.labels) return;
    const here = this.path.join('.');
    while (this.labels.length < this.count) this.labels.push(here);
  }

  private walk(v: unknown): void {
    switch (typeof v) {
      case 'undefined':
        this.put(TAG.undef);
        return;
      case 'boolean':
        this.put(v ? TAG.true : TAG.false);
        return;
      case 'number':
        this.put2(TAG.num, v);
        return;
      case 'string':
        this.put(TAG.str);
        this.str(v);
        return;
      case 'function':
        // Callbacks are code, not state; whether one is set is.
        this.put(TAG.fn);
        return;
      case 'bigint':
      case 'symbol':
        this.put(TAG.str);
        this.str(String(v));
        return;
    }
    if (v === null) {
      this.put(TAG.null);
      return;
    }
    this.object(v as object);
  }

  private readonly walkEntry = (x: unknown, k: unknown): void => {
    this.walk(k);
    this.walk(x);
  };

  private object(o: object): void {
    const own = this.custom?.get(o);
    if (own !== undefined) {
      this.put(TAG.custom);
      own(this);
      return;
    }
    // Instances of classes (channels, rings, drivers) are few and are where the cycles
    // are (a packet's channel, say): a second path to one is keyed as a reference. Plain
    // data is keyed wherever it is reached, which spares an identity hash for each of
    // thousands of packets; a cycle through plain data alone is refused below.
    const proto = Object.getPrototypeOf(o) as unknown;
    const instance = proto !== Object.prototype && proto !== Array.prototype && proto !== null;
    if (instance) {
      const id = this.seen.get(o);
      if (id !== undefined) {
        this.put2(TAG.ref, id);
        return;
      }
      this.seen.set(o, this.seen.size);
    }
    if (++this.depth > MAX_DEPTH) throw new Error('state key: plain data nested deeper than any run state is (a cycle?)');
    try {
      this.inner(o);
    } finally {
      this.depth--;
    }
  }

  private inner(o: object): void {
    if (ArrayBuffer.isView(o)) {
      if (o.buffer instanceof SharedArrayBuffer) {
        // A view of guest memory, whose bytes are in the key once: only where it looks.
        this.put3(TAG.shared, o.byteOffset, o.byteLength);
      } else {
        this.data(new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
      }
      return;
    }
    if (Array.isArray(o)) {
      this.put2(TAG.arr, o.length);
      for (let i = 0; i < o.length; i++) this.walk(o[i]);
      return;
    }
    if (o instanceof Map || o instanceof TransactionTable) {
      this.put2(TAG.map, o.size);
      // forEach, not for-of: no [key, value] array per entry. A TransactionTable walks by
      // ascending id, whatever its capacity and history: equal contents, equal keys.
      o.forEach(this.walkEntry);
      return;
    }
    if (o instanceof Set) {
      this.put2(TAG.set, o.size);
      o.forEach(this.walkEntry);
      return;
    }
    if (isFifo(o)) {
      // A FIFO ({ items, head }, vmbus/fifo.ts) is what is still in it, however much of
      // the consumed prefix is still in the array.
      this.put2(TAG.fifo, o.items.length - o.head);
      for (let i = o.head; i < o.items.length; i++) this.walk(o.items[i]);
      return;
    }
    this.put(TAG.obj);
    const rec = o as Record<string, unknown>;
    const ov = this.overrides === null || this.overrides.size === 0 ? undefined : this.overrides.get(o);
    // Object.keys, not for-in: the walk meets objects of dozens of shapes, and optimised
    // for-in code is specialised to the shapes it has seen. Each new one threw it away
    // (a deoptimisation) and had it compiled again: hundreds of times a second in explore.
    const keys = Object.keys(rec);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (IGNORED_FIELDS.has(k)) continue;
      this.str(k);
      if (this.labels) this.path.push(k);
      this.walk(ov !== undefined && k in ov ? ov[k] : rec[k]);
      if (this.labels) {
        this.label();
        this.path.pop();
      }
    }
    this.put(TAG.obj);
  }

  equals(other: StateKey): boolean {
    return (
      sameNumbers(this.numbers(), other.numbers()) &&
      sameArray(this.strs, this.strCount, other.strs, other.strCount) &&
      sameBytes(this.bytes, this.byteCount, other.bytes, other.byteCount)
    );
  }

  /** Where two keys first differ, for explaining why a schedule was run in full. */
  firstDifference(other: StateKey): string | null {
    if (!sameNumbers(this.numbers(), other.numbers())) {
      const a = [...this.numbers()];
      const b = [...other.numbers()];
      const i = firstMismatch(a, b);
      return `numbers differ at ${i}${this.labels ? ` (${this.labels[i] ?? 'end'})` : ''}: ${a[i]} / ${b[i]}`;
    }
    if (!sameArray(this.strs, this.strCount, other.strs, other.strCount)) {
      const i = firstMismatch(this.strs.slice(0, this.strCount), other.strs.slice(0, other.strCount));
      return `strings differ at ${i}: ${String(this.strs[i])} / ${String(other.strs[i])}`;
    }
    if (!sameBytes(this.bytes, this.byteCount, other.bytes, other.byteCount)) return 'bytes differ';
    return null;
  }
}

function isFifo(o: object): o is { items: unknown[]; head: number } {
  const f = o as { items?: unknown; head?: unknown };
  if (typeof f.head !== 'number' || !Array.isArray(f.items)) return false;
  let n = 0;
  for (const _ in o) n++;
  return n === 2;
}

/** Bit for bit (so -0 and 0 differ, as Object.is has them), compared as bytes. */
function sameNumbers(a: Float64Array, b: Float64Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The first `an` of `a` and `bn` of `b` are the same. */
function sameArray<T>(a: readonly T[], an: number, b: readonly T[], bn: number): boolean {
  if (an !== bn) return false;
  for (let i = 0; i < an; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function firstMismatch<T>(a: readonly T[], b: readonly T[]): number {
  let i = 0;
  while (i < a.length && i < b.length && Object.is(a[i], b[i])) i++;
  return i;
}

/** The first `an` of `a` and `bn` of `b` hold the same bytes. */
function sameBytes(a: readonly Uint8Array[], an: number, b: readonly Uint8Array[], bn: number): boolean {
  if (an !== bn) return false;
  for (let i = 0; i < an; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y && !bytesEqual(x, y)) return false;
  }
  return true;
}

/** Buffer's native compare, called on the arrays themselves (no Buffer made per pair). */
const nativeEquals = Buffer.prototype.equals as (this: Uint8Array, other: Uint8Array) => boolean;

function bytesEqual(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  // Payloads are short: a loop beats the native call there.
  if (x.length > 64) return nativeEquals.call(x, y);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
