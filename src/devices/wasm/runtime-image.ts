// A C driver's runtime as a saved VM holds it: its linear memory, byte for byte, and the
// tables the runtime keeps beside it (the pool's blocks, quarantine and free lists, the
// handle counters). A guest driver's whole state is guest memory, so a VM save, a
// checkpoint and a migration carry this image, and applying a checkpoint puts an older
// one back. Each shim adds its own tables (linux-shim.ts LinuxShimImage) beside it.
//
// The image is plain data (structured-clonable: a migration to another thread sends it
// through the VM's saved-state blob). A snapshot is taken only between entries into the
// driver, when no driver frame is live, so the module's globals (the stack pointer) are
// at their initial values and the memory alone is the driver's state.
//
// What makes it cheap (explore takes one at every save point):
//  - the memory is held as runs of pages (memory-runs.ts): pages of one byte value (the
//    zero above the pool's top, the poison of its quarantine) are a value and a length;
//  - an image can be put back into a runtime nobody uses any more (DriverRuntime.reuse)
//    instead of a new instance, whose fresh memory mapping cost more than the copy;
//  - the runs are worked out once per version of the memory (memory-runs.ts liveRuns):
//    explore keys the memory before a save point's operation, saves it, restores it and
//    keys it again; the save takes the first key's runs and the second key the restored
//    image's, so the megabytes are scanned once per save point, not three times.
//
// Invariant: revive(image(rt)) gives a runtime whose memory and pool equal rt's at the
// snapshot, and the same calls into both do the same, whether revived into a new
// instance or a reused one (test/devices/wasm/runtime-image.test.ts).

import { RestoreError } from '../../vmbus/saved-state.ts';
import { copyRuns, knownRuns, liveRuns, rememberRuns, runsProblem, writeRuns, type MemoryRun } from './memory-runs.ts';
import { LIVE_FIELDS, QUARANTINE, QUARANTINE_FIELDS, type PoolImage } from './pool.ts';
import type { DriverRuntime } from './runtime.ts';

export interface RuntimeImage {
  /** the driver's name: an image is revived only into the same driver */
  driver: string;
  /** linear memory from address 0, as bytes: all of it, or as far as `runs` take over */
  memory: Uint8Array;
  /**
   * The linear memory's size in bytes, when `memory` holds less of it: `runs` hold the
   * bytes past `memory`, and what neither holds up to `size` is zero. Absent (an image
   * from before runs): `memory` is the whole of it.
   */
  size?: number;
  /** the memory from memory.length on, as runs of bytes or of one value (memory-runs.ts) */
  runs?: MemoryRun[];
  pool: PoolImage;
  handles: Array<[kind: number, next: number]>;
}

/**
 * The runtime's state now (a copy). Refused while the driver is running. `live`: its
 * bytes are views of the runtime's own memory, for a caller that copies them before the
 * driver runs again (a VM save encodes them into its blob at once): one copy fewer.
 */
export function runtimeImage(rt: DriverRuntime, live = false): RuntimeImage {
  if (rt.inDriver) throw new Error(`${rt.name}: a snapshot is taken between entries into the driver, not inside one`);
  // The runs a state key of this very memory worked out, if it has not changed since (memory-runs.ts liveRuns).
  const found = liveRuns(rt.mem);
  const runs = live ? [...found] : copyRuns(found);
  const first = runs[0];
  const memory = first && first[0] === 0 && first.length === 2 ? (runs.shift(), first[1]) : new Uint8Array(0);
  return { driver: rt.name, memory, size: rt.mem.size, runs, pool: rt.pool.image(), handles: rt.handleCounters() };
}

/** The bench refuses a driver image whose memory is larger than this (a pool that big is a runaway driver). */
export const MAX_IMAGE_MEMORY = 1 << 30;

/** The linear memory size an image gives its runtime. */
export function imageMemorySize(img: RuntimeImage): number {
  return img.size ?? img.memory.length;
}

function bad(what: string): never {
  throw new RestoreError('bad-record', `the C guest driver's image ${what}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isU32 = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/**
 * Checks a decoded image against the driver it is meant for (`rt`, instantiated, nothing
 * run yet): every field, and every pool block inside the image's memory. A malformed
 * image is a RestoreError ('bad-record') naming the field, before anything is changed.
 */
export function checkRuntimeImage(img: unknown, rt: DriverRuntime): asserts img is RuntimeImage {
  if (!isObject(img)) bad('is not a record');
  if (img.driver !== rt.name) bad(`is of driver ${JSON.stringify(img.driver)}, not ${rt.name}`);
  const mem = img.memory;
  if (!(mem instanceof Uint8Array)) bad('memory is not bytes');
  // The module's own size is the instance's before anything grew it (a reused runtime's may be larger).
  const own = rt.initialMemory;
  if (img.size === undefined) {
    if (img.runs !== undefined) bad('has runs but no size');
    if (mem.length % 65536 !== 0 || mem.length < own) bad(`memory is ${mem.length} bytes: not whole 64 KiB pages, or smaller than the module's own ${own}`);
  } else {
    if (!isU32(img.size) || img.size % 65536 !== 0 || img.size < own) bad(`size ${String(img.size)} is not whole 64 KiB pages, or smaller than the module's own ${own}`);
    if (mem.length > img.size) bad(`memory is ${mem.length} bytes, larger than its size ${img.size}`);
    const problem = runsProblem(img.runs ?? [], mem.length, img.size);
    if (problem) bad(`runs${problem}`);
  }
  const size = img.size ?? mem.length;
  if (size > MAX_IMAGE_MEMORY) bad(`memory is ${size} bytes, more than the ${MAX_IMAGE_MEMORY} the bench revives`);
  img.pool = checkPoolImage(img.pool, rt.pool.base, size);
  if (!Array.isArray(img.handles) || !img.handles.every((h) => Array.isArray(h) && isU32(h[0]) && isU32(h[1]))) bad('handles is not a list of counters');
}

/**
 * The pool's tables of an image, checked against the heap [base, size): every field, and
 * every block inside the heap. An image from before the tables were columns (a list per
 * block) is read too, and given back as columns.
 */
function checkPoolImage(p: unknown, base: number, size: number): PoolImage {
  if (!isObject(p)) bad('pool is not a record');
  const inside = (at: unknown, n: unknown): boolean => isU32(at) && isU32(n) && (at as number) >= base && (at as number) + (n as number) <= size;
  if (!isU32(p.top) || p.top < base || p.top > size) bad(`pool.top ${String(p.top)} is outside the heap`);
  // The pool writes a block's guards and poison a word at a time from its 16-byte slot (pool.ts frame).
  if ((p.top - base) % 16 !== 0) bad(`pool.top ${p.top} is off the heap's 16-byte slots`);
  if (!isU32(p.allocations)) bad('pool.allocations is not a count');
  const pool = Array.isArray(p.live) ? columnsOf(p, inside) : (p as unknown as PoolImage);
  const { live, sites, quarantine, spare } = pool;
  if (!Array.isArray(sites) || !sites.every((x) => Array.isArray(x) && x.every((f) => typeof f === 'string'))) bad('pool.sites is not a list of allocation sites');
  if (!(live instanceof Uint32Array) || live.length % LIVE_FIELDS !== 0) bad(`pool.live is not ${LIVE_FIELDS} numbers per block`);
  const seen = new Set<number>();
  for (let o = 0; o < live.length; o += LIVE_FIELDS) {
    const at = live[o]!;
    if (!inside(at, live[o + 1]) || live[o + 3]! > 1 || live[o + 4]! > sites.length) bad('pool.live is not a list of blocks inside the heap');
    // The pool finds a block by its 16-byte slot above its base (live-blocks.ts).
    if ((at - base) % 16 !== 0 || seen.has(at)) bad('pool.live has a block off its 16-byte slots, or one address twice');
    seen.add(at);
  }
  if (!(quarantine instanceof Uint32Array) || quarantine.length % QUARANTINE_FIELDS !== 0) bad(`pool.quarantine is not ${QUARANTINE_FIELDS} numbers per slot`);
  for (let o = 0; o < quarantine.length; o += QUARANTINE_FIELDS) {
    if (quarantine[o]! > 1 || (quarantine[o] === 1 && !inside(quarantine[o + 1], quarantine[o + 2]))) bad('pool.quarantine is not a list of freed blocks inside the heap');
  }
  const slots = quarantine.length / QUARANTINE_FIELDS;
  if (slots > QUARANTINE) bad(`pool.quarantine has ${slots} slots, more than the pool's ${QUARANTINE}`);
  if (!isU32(pool.qNext) || pool.qNext >= QUARANTINE) bad('pool.qNext is not a quarantine slot');
  if (!Array.isArray(spare) || !spare.every((e) => Array.isArray(e) && isU32(e[0]) && e[1] instanceof Uint32Array && e[1].every((b) => inside(b, e[0]) && (b - base) % 16 === 0))) bad('pool.spare is not a list of free blocks inside the heap, on its 16-byte slots');
  return pool;
}

/** An image's pool tables as lists (a block per list, as images held them before columns), as columns; malformed lists are refused. */
function columnsOf(p: Record<string, unknown>, inside: (at: unknown, n: unknown) => boolean): PoolImage {
  const live = p.live as unknown[];
  if (!live.every((b) => Array.isArray(b) && inside(b[0], b[1]) && isU32(b[2]) && (b[3] === 'driver' || b[3] === 'shim') && (b[4] === null || (Array.isArray(b[4]) && b[4].every((f) => typeof f === 'string'))))) bad('pool.live is not a list of blocks inside the heap');
  if (!Array.isArray(p.quarantine) || !p.quarantine.every((b) => b === null || (Array.isArray(b) && inside(b[0], b[1]) && isU32(b[2])))) bad('pool.quarantine is not a list of freed blocks inside the heap');
  if (!Array.isArray(p.spare) || !p.spare.every((e) => Array.isArray(e) && isU32(e[0]) && Array.isArray(e[1]) && (e[1] as unknown[]).every((b) => isU32(b)))) bad('pool.spare is not a list of free blocks inside the heap');
  const sites: string[][] = [];
  const cols = new Uint32Array(live.length * LIVE_FIELDS);
  (live as Array<[number, number, number, string, string[] | null]>).forEach(([at, n, tag, owner, site], i) => {
    cols.set([at, n, tag, owner === 'driver' ? 1 : 0, site ? sites.push(site) : 0], i * LIVE_FIELDS);
  });
  const q = new Uint32Array(p.quarantine.length * QUARANTINE_FIELDS);
  (p.quarantine as Array<[number, number, number] | null>).forEach((b, i) => {
    if (b) q.set([1, b[0], b[1], b[2]], i * QUARANTINE_FIELDS);
  });
  const spare = (p.spare as Array<[number, number[]]>).map(([total, bases]): [number, Uint32Array] => [total, Uint32Array.from(bases)]);
  return { top: p.top as number, live: cols, sites, quarantine: q, qNext: p.qNext as number, spare, allocations: p.allocations as number };
}

/** Whether `rt` (a reused runtime) can take the image: wasm memory grows, it never shrinks. */
export function fitsRuntime(rt: DriverRuntime, img: RuntimeImage): boolean {
  return rt.mem.size <= imageMemorySize(img);
}

/**
 * Puts a checked image into a runtime of the same driver: a fresh instance (`fresh`:
 * nothing has run in it, so its memory above the module's data is zero already), or
 * one nobody uses any more, readied with DriverRuntime.reuse, whose memory must fit
 * (fitsRuntime).
 */
export function restoreRuntime(rt: DriverRuntime, img: RuntimeImage, opts: { fresh?: boolean } = { fresh: true }): void {
  const size = imageMemorySize(img);
  const had = rt.mem.size;
  // What a reused instance's memory holds now, when its runs are known (liveRuns, taken
  // before growing moves the version): fills it holds already are not written again.
  const known = opts.fresh ? null : knownRuns(rt.mem);
  if (had > size) throw new Error(`${rt.name}: a memory of ${had} bytes cannot take an image of ${size} (wasm memory never shrinks)`);
  try {
    rt.mem.ensure(size);
  } catch (e) {
    if (e instanceof RangeError) bad(`memory of ${size} bytes could not be had: ${e.message}`);
    throw e;
  }
  const b = rt.mem.bytes;
  b.set(img.memory);
  // Memory grown just now is zero, and so is a new instance's above its data (below the
  // heap); the rest may hold anything, and every byte of it is written.
  writeRuns(b, img.memory.length, img.runs ?? [], had, opts.fresh ? rt.pool.base : had, known);
  // The memory is now what the image's runs say: the next key or save need not scan it.
  // (An image from before runs holds one run of bytes: left for liveRuns to work out.)
  if (img.runs) rememberRuns(rt.mem, img.memory.length > 0 ? [[0, img.memory], ...img.runs] : [...img.runs]);
  rt.pool.restore(img.pool);
  rt.restoreHandleCounters(img.handles);
}
