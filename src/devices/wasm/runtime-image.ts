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
// Invariant: revive(image(rt)) gives a runtime whose memory and pool equal rt's at the
// snapshot, and the same calls into both do the same (test/devices/wasm/runtime-image.test.ts).

import { RestoreError } from '../../vmbus/saved-state.ts';
import type { PoolImage } from './pool.ts';
import type { DriverRuntime } from './runtime.ts';

export interface RuntimeImage {
  /** the driver's name: an image is revived only into the same driver */
  driver: string;
  memory: Uint8Array;
  pool: PoolImage;
  handles: Array<[kind: number, next: number]>;
}

/** The runtime's state now (a copy). Refused while the driver is running. */
export function runtimeImage(rt: DriverRuntime): RuntimeImage {
  if (rt.inDriver) throw new Error(`${rt.name}: a snapshot is taken between entries into the driver, not inside one`);
  return { driver: rt.name, memory: rt.mem.bytes.slice(), pool: rt.pool.image(), handles: rt.handleCounters() };
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
  if (mem.length % 65536 !== 0 || mem.length < rt.mem.size) bad(`memory is ${mem.length} bytes: not whole 64 KiB pages, or smaller than the module's own ${rt.mem.size}`);
  const p = img.pool;
  if (!isObject(p)) bad('pool is not a record');
  const inside = (at: unknown, size: unknown): boolean => isU32(at) && isU32(size) && (at as number) >= rt.pool.base && (at as number) + (size as number) <= mem.length;
  if (!isU32(p.top) || p.top < rt.pool.base || p.top > mem.length) bad(`pool.top ${String(p.top)} is outside the heap`);
  if (!Array.isArray(p.live) || !p.live.every((b) => Array.isArray(b) && inside(b[0], b[1]) && isU32(b[2]) && (b[3] === 'driver' || b[3] === 'shim') && (b[4] === null || (Array.isArray(b[4]) && b[4].every((f) => typeof f === 'string'))))) bad('pool.live is not a list of blocks inside the heap');
  if (!Array.isArray(p.quarantine) || !p.quarantine.every((b) => b === null || (Array.isArray(b) && inside(b[0], b[1]) && isU32(b[2])))) bad('pool.quarantine is not a list of freed blocks inside the heap');
  if (!isU32(p.qNext) || (p.quarantine.length > 0 && p.qNext >= Math.max(p.quarantine.length, 256))) bad('pool.qNext is not a quarantine slot');
  if (!Array.isArray(p.spare) || !p.spare.every((e) => Array.isArray(e) && isU32(e[0]) && Array.isArray(e[1]) && (e[1] as unknown[]).every((b) => inside(b, e[0])))) bad('pool.spare is not a list of free blocks inside the heap');
  if (!isU32(p.allocations)) bad('pool.allocations is not a count');
  if (!Array.isArray(img.handles) || !img.handles.every((h) => Array.isArray(h) && isU32(h[0]) && isU32(h[1]))) bad('handles is not a list of counters');
}

/** Puts a checked image into a freshly instantiated runtime of the same driver. */
export function restoreRuntime(rt: DriverRuntime, img: RuntimeImage): void {
  rt.mem.ensure(img.memory.length);
  rt.mem.bytes.set(img.memory);
  rt.pool.restore(img.pool);
  rt.restoreHandleCounters(img.handles);
}
