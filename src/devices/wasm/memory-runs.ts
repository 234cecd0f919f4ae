// A driver's linear memory as an image holds it (runtime-image.ts): runs of 1 KiB pages,
// each either bytes as they are or one byte value repeated. Most of a C guest's memory
// is one value: zero above the pool's top and in an idle stack, and 0xdd in the pool's
// quarantine, where every freed block waits poisoned (the Linux trace reader frees a
// 64 KiB chunk per read, so a run's memory fills with them). Held as bytes, every save
// copied megabytes of poison; held as runs, a save copies what the driver really wrote.
// Pages of 1 KiB rather than 4: a quarantined 64 KiB block's guards and the small blocks
// between them made their whole 4 KiB pages bytes; at 1 KiB a C Linux guest's image
// holds ~40% fewer bytes (440 KiB to 270 KiB in the 1,000-transaction explore) in as
// many runs, and every save, restore and key copies or compares those bytes.
//
// The image is exact: every byte of memory is in a run or in the zero tail, and a page
// is a fill run only when all its bytes are that value (compared natively). Nothing is
// assumed about what the pool put where: a write after free in a quarantined block
// makes its page bytes, and the pool's check fires after the restore as before.
//
// Invariant: writeRuns(m, runsOf(m)) into any memory of the same size gives m again,
// byte for byte (test/devices/wasm/memory-runs.test.ts).

import { FILLED, filledWith as fillOf, type Linear } from './linear.ts';

export const RUN_PAGE = 1024;

/** Bytes as they are, or `length` bytes all equal to `fill`. */
export type MemoryRun = [at: number, bytes: Uint8Array] | [at: number, length: number, fill: number];

/** Pages of one value are looked at this many at a time once a run of them has begun (the length of fillOf's arrays). */
const STRIDE = FILLED;

/** The value every byte of the page at `p` has, or -1. */
function uniform(bytes: Uint8Array, p: number): number {
  const v = bytes[p]!;
  // A few bytes first: most pages of bytes differ early, before a call to compare.
  if (bytes[p + 1] !== v || bytes[p + (RUN_PAGE >> 1)] !== v || bytes[p + RUN_PAGE - 1] !== v) return -1;
  return Buffer.compare(bytes.subarray(p, p + RUN_PAGE), fillOf(v).subarray(0, RUN_PAGE)) === 0 ? v : -1;
}

/**
 * `bytes` (whole pages) as runs in address order, each starting where the one before
 * ended, without the zero run at the end (the image's size says how far that goes).
 * `live`: the byte runs are views of `bytes`; else copies, in one buffer of their own.
 */
export function runsOf(bytes: Uint8Array, live: boolean): MemoryRun[] {
  const runs: MemoryRun[] = [];
  let rawFrom = -1;
  let fillFrom = -1;
  let fill = -1;
  const close = (end: number): void => {
    if (rawFrom >= 0) runs.push([rawFrom, bytes.subarray(rawFrom, end)]);
    else if (fillFrom >= 0) runs.push([fillFrom, end - fillFrom, fill]);
    rawFrom = fillFrom = -1;
  };
  const n = bytes.length;
  for (let p = 0; p < n; ) {
    const v = uniform(bytes, p);
    if (v < 0) {
      if (rawFrom < 0) {
        close(p);
        rawFrom = p;
      }
      p += RUN_PAGE;
      continue;
    }
    if (fillFrom < 0 || fill !== v) {
      close(p);
      fillFrom = p;
      fill = v;
    }
    p += RUN_PAGE;
    // Within a run of one value (a quarantined 64 KiB block, the zero above the pool's
    // top), many pages at once: a stride, halved each time it reaches past the run (its
    // last byte, looked at first, mostly says so), down to single pages.
    const big = fillOf(v);
    for (let step = STRIDE; step > RUN_PAGE; ) {
      if (p + step <= n && bytes[p] === v && bytes[p + step - 1] === v && Buffer.compare(bytes.subarray(p, p + step), big.subarray(0, step)) === 0) p += step;
      else step >>= 1;
    }
  }
  close(bytes.length);
  const last = runs[runs.length - 1];
  if (last && last.length === 3 && last[2] === 0) runs.pop();
  return live ? runs : copyRuns(runs);
}

/** The runs with their bytes copied out, into one buffer of their own. */
export function copyRuns(runs: readonly MemoryRun[]): MemoryRun[] {
  // Copied into one buffer: every byte is written, so it need not be zeroed first
  // (allocUnsafe reuses memory; a zeroed array maps fresh pages, dearer than the copy).
  let total = 0;
  for (const r of runs) if (r.length === 2) total += r[1].length;
  const own = Buffer.allocUnsafe(total);
  let at = 0;
  return runs.map((r) => {
    if (r.length === 3) return r;
    const copy = new Uint8Array(own.buffer, own.byteOffset + at, r[1].length);
    copy.set(r[1]);
    at += r[1].length;
    return [r[0], copy];
  });
}

/**
 * What is wrong with `runs` as the runs of a memory of `size` bytes that an image's
 * first `from` bytes are held apart from (null: nothing): each is a run, in order,
 * starting where the one before ended, within `size`.
 */
export function runsProblem(runs: unknown, from: number, size: number): string | null {
  if (!Array.isArray(runs)) return ' is not a list of runs';
  let at = from;
  for (let i = 0; i < runs.length; i++) {
    const r: unknown = runs[i];
    if (!Array.isArray(r) || (r.length !== 2 && r.length !== 3)) return `[${i}] is not [at, bytes] or [at, length, fill]`;
    if (r[0] !== at) return `[${i}] starts at ${String(r[0])}, not where the run before it ended (${at})`;
    let n: number;
    if (r.length === 2) {
      if (!(r[1] instanceof Uint8Array) || r[1].length === 0) return `[${i}] holds no bytes`;
      n = r[1].length;
    } else {
      if (!Number.isSafeInteger(r[1]) || (r[1] as number) <= 0) return `[${i}] has length ${String(r[1])}`;
      if (!Number.isInteger(r[2]) || (r[2] as number) < 0 || (r[2] as number) > 255) return `[${i}] fills with ${String(r[2])}, not a byte`;
      n = r[1] as number;
    }
    if (at + n > size) return `[${i}] ends at ${at + n}, past the memory's ${size} bytes`;
    at += n;
  }
  return null;
}

/**
 * Writes checked runs into `bytes` from `from` on, then zeroes up to `zeroTo`. Zeroes
 * are not written from `cleanFrom` on, where the memory is zero already (a new
 * instance's memory above its data; for a used one, pass bytes.length). `known`: runs
 * from address 0 that say what `bytes` holds now (zero past their end), or null; a fill
 * is then written only where the memory holds another value. A reused instance's memory
 * is mostly the image's already (the same pool, the same poisoned quarantine a few save
 * points earlier), and writing its megabytes of fill was most of a restore's copying.
 */
export function writeRuns(bytes: Uint8Array, from: number, runs: readonly MemoryRun[], zeroTo: number, cleanFrom: number, known: readonly MemoryRun[] | null = null): void {
  let k = 0; // the first known run that ends past the last fill looked at (fills come in address order)
  const fill = (a: number, b: number, v: number): void => {
    if (v === 0) b = Math.min(b, cleanFrom);
    if (a >= b) return;
    if (known === null) {
      bytes.fill(v, a, b);
      return;
    }
    while (a < b) {
      while (k < known.length && runEnd(known[k]!) <= a) k++;
      const r = known[k];
      // Past the known runs the memory is zero; inside one, it is that run's value or bytes.
      const end = r === undefined ? b : Math.min(b, runEnd(r));
      const same = r === undefined ? v === 0 : r.length === 3 && r[2] === v;
      if (!same) bytes.fill(v, a, end);
      a = end;
    }
  };
  let at = from;
  for (const r of runs) {
    if (r.length === 2) {
      bytes.set(r[1], at);
      at += r[1].length;
    } else {
      fill(at, at + r[1], r[2]);
      at += r[1];
    }
  }
  fill(at, zeroTo, 0);
}

function runEnd(r: MemoryRun): number {
  return r[0] + (r.length === 2 ? r[1].length : r[1]);
}

/** The runs liveRuns remembers for the memory now, without working them out: null when it has none. */
export function knownRuns(mem: Linear): readonly MemoryRun[] | null {
  return mem.derivedAt === mem.version ? (mem.derived as MemoryRun[]) : null;
}

/**
 * A driver's memory as runs (runsOf, live), worked out once per version of the memory
 * (linear.ts): a save point keys the memory before and after its operation, and the save
 * images it, and nothing changes it in between unless the driver runs. The runs' bytes
 * are views of the memory, or copies equal to it (rememberRuns); either way they are
 * only read, and only until the memory's next version.
 */
export function liveRuns(mem: Linear): readonly MemoryRun[] {
  if (mem.derivedAt === mem.version) return mem.derived as MemoryRun[];
  const runs = runsOf(mem.peek(), true);
  mem.derived = runs;
  mem.derivedAt = mem.version;
  return runs;
}

/**
 * Tells liveRuns what the memory holds now, as runs that tile it exactly (a restore has
 * just written them into it: runtime-image.ts restoreRuntime), so that it need not scan
 * the memory again. Runs in another shape than runsOf gives (a page of one value held as
 * bytes) describe the same memory: keyed, they only differ from runsOf's, never match a
 * memory they do not describe.
 */
export function rememberRuns(mem: Linear, runs: readonly MemoryRun[]): void {
  mem.derived = runs;
  mem.derivedAt = mem.version;
}
