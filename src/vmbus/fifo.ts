// A first-in first-out queue as plain data ({ items, head }), so that it survives
// structuredClone and v8 serialisation inside a guest memory image.
//
// Array.prototype.shift is O(n) on large arrays, which made a 100,000-packet library
// queue quadratic. Here taking the head is O(1); the consumed prefix is dropped once it
// is both large and more than half of the array.

export interface Fifo<T> {
  items: T[];
  head: number;
}

export function fifo<T>(): Fifo<T> {
  return { items: [], head: 0 };
}

export function fifoLength<T>(q: Fifo<T>): number {
  return q.items.length - q.head;
}

export function fifoPeek<T>(q: Fifo<T>): T | undefined {
  return q.head < q.items.length ? q.items[q.head] : undefined;
}

export function fifoPush<T>(q: Fifo<T>, item: T): void {
  q.items.push(item);
}

export function fifoShift<T>(q: Fifo<T>): T | undefined {
  if (q.head >= q.items.length) return undefined;
  const item = q.items[q.head]!;
  q.items[q.head] = undefined as T; // let it be collected
  q.head++;
  if (q.head === q.items.length) {
    q.items.length = 0;
    q.head = 0;
  } else if (q.head > 1024 && q.head * 2 > q.items.length) {
    q.items = q.items.slice(q.head);
    q.head = 0;
  }
  return item;
}

/** The queued items, oldest first (a copy). */
export function fifoItems<T>(q: Fifo<T>): T[] {
  return q.items.slice(q.head);
}

export function fifoClear<T>(q: Fifo<T>): void {
  q.items.length = 0;
  q.head = 0;
}

/**
 * Inserts keeping the queue sorted by `key`, after any items with an equal key (so items
 * due at the same time leave in arrival order). Appending is the common case and O(1).
 */
export function fifoInsertSorted<T>(q: Fifo<T>, item: T, key: (t: T) => number): void {
  const items = q.items;
  const k = key(item);
  if (items.length === q.head || key(items[items.length - 1]!) <= k) {
    items.push(item);
    return;
  }
  let lo = q.head;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(items[mid]!) <= k) lo = mid + 1;
    else hi = mid;
  }
  items.splice(lo, 0, item);
}
