// The checks a decoded Linux shim image (LinuxShimImage, linux-shim.ts) passes before a
// driver is revived from it: every field, so that a saved VM whose guest image is
// malformed is refused (RestoreError 'bad-record', exit 2) with the VM as it was, never
// a TypeError from deep inside the restore. Addresses are checked as u32s only; whether
// they point at the driver's objects is for the driver's own code to find out, as in a
// real kernel.

import { RestoreError } from '../../vmbus/saved-state.ts';
import type { LinuxShimImage } from './linux-shim.ts';

function bad(what: string): never {
  throw new RestoreError('bad-record', `the C guest driver's image: linux.${what}`);
}

const isU32 = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isTuple = (v: unknown, n: number): v is unknown[] => Array.isArray(v) && v.length === n;

export function checkLinuxShimImage(img: unknown): asserts img is LinuxShimImage {
  if (typeof img !== 'object' || img === null || Array.isArray(img)) bad('is not a record');
  const r = img as Record<string, unknown>;
  if (!isU32(r.driver)) bad('driver is not an address');
  const chs = r.channels;
  if (!Array.isArray(chs)) bad('channels is not a list');
  const seen = new Set<number>();
  chs.forEach((c: unknown, i) => {
    const x = c as Record<string, unknown> | null;
    if (typeof x !== 'object' || x === null) bad(`channels[${i}] is not a record`);
    for (const f of ['id', 'callback', 'context', 'scratch'] as const) if (!isU32(x[f])) bad(`channels[${i}].${f} is not a u32`);
    if (typeof x.open !== 'boolean') bad(`channels[${i}].open is not a boolean`);
    if (seen.has(x.id as number)) bad(`channels[${i}].id ${String(x.id)} is there twice`);
    seen.add(x.id as number);
  });
  if (!Array.isArray(r.files) || !r.files.every((f) => isTuple(f, 2) && typeof f[0] === 'string' && isU32(f[1]))) bad('files is not a list of [name, fops]');
  if (!Array.isArray(r.locks) || !r.locks.every((l) => isTuple(l, 3) && isU32(l[0]) && typeof l[1] === 'boolean' && isU32(l[2]))) bad('locks is not a list of [address, held, irql]');
  if (!Array.isArray(r.mutexes) || !r.mutexes.every(isU32)) bad('mutexes is not a list of addresses');
  if (!Array.isArray(r.works) || !r.works.every((w) => isTuple(w, 3) && isU32(w[0]) && isU32(w[1]) && isTime(w[2]))) bad('works is not a list of [address, function, due]');
  if (!Array.isArray(r.xarrays) || !r.xarrays.every((x) => isTuple(x, 2) && isU32(x[0]) && Array.isArray(x[1]) && (x[1] as unknown[]).every((e) => isTuple(e, 2) && isU32(e[0]) && isU32(e[1])))) {
    bad('xarrays is not a list of [address, [index, entry]...]');
  }
}
