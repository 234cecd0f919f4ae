// A KMDF driver's framework objects as guest memory: the WDF shim's tables (wdf-shim.ts)
// as plain data. In a real Windows guest they live in Wdf01000.sys's nonpaged pool, so a
// VM save carries them with the rest of guest memory, and the restored guest finds its
// devices (PnP and control), queues, timers, work items, spin and wait locks, registry
// values and object contexts
// where they were. Taken between entries into the driver only: no request is being
// dispatched then, and no spin lock may be held (one held would be a driver that
// returned holding it; the image keeps what it finds, and the shim's checks see it).
//
// Invariant: restoring an image into a fresh shim of the same driver and taking its
// image again gives an equal image (test/devices/wasm/wdf-shim-image.test.ts; as part of
// the whole guest image, a fast-check property in kmcl-client-image.test.ts).

import { RestoreError } from '../../vmbus/saved-state.ts';

export interface WdfObjectImage {
  handle: number;
  kind: number;
  /** the parent's handle, 0 for none */
  parent: number;
  callback: number;
  period: number;
  level: number;
  /** context type -> its address in the driver's memory */
  contexts: Array<[type: number, at: number]>;
  due: number | null;
  held: boolean;
  savedIrql: number;
  queued: boolean;
  request: { input: number; inputLen: number; output: number; outputLen: number; code: number; status: number | null; info: number } | null;
  pnp: { prepare: number; release: number; ioInCallerContext: number } | null;
  /** the device's default queue's handle, 0 for none */
  queue: number;
  /** a control device's NT name and whether it finished initializing; null for any other object */
  control: { name: string | null; finished: boolean } | null;
  /** the symbolic link the driver created for the device, or null */
  link: string | null;
  /** EvtCleanupCallback, 0 for none */
  cleanup: number;
}

export interface WdfShimImage {
  /** every live object in creation order (children lists keep that order) */
  objects: WdfObjectImage[];
  driver: { handle: number; add: number; unload: number } | null;
  /** the live devices' handles (PnP and control), in creation order */
  devices: number[];
  registry: Array<[name: string, value: number]>;
}

function bad(what: string): never {
  throw new RestoreError('bad-record', `the C guest driver's image wdf${what.startsWith('is ') ? ' ' : '.'}${what}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isU32 = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isTime = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);

/** Checks a decoded image field by field, and that every handle it names is one of its objects. */
export function checkWdfShimImage(img: unknown): asserts img is WdfShimImage {
  if (!isObject(img)) bad('is not a record');
  if (!Array.isArray(img.objects)) bad('objects is not a list');
  const handles = new Set<number>();
  img.objects.forEach((o: unknown, i: number) => {
    const at = `objects[${i}]`;
    if (!isObject(o)) bad(`${at} is not a record`);
    for (const f of ['handle', 'kind', 'parent', 'callback', 'period', 'level', 'savedIrql', 'queue', 'cleanup'] as const) if (!isU32(o[f])) bad(`${at}.${f} is not a u32`);
    if (handles.has(o.handle as number)) bad(`${at}.handle 0x${(o.handle as number).toString(16)} is there twice`);
    if (!Array.isArray(o.contexts) || !o.contexts.every((c) => Array.isArray(c) && c.length === 2 && isU32(c[0]) && isU32(c[1]))) bad(`${at}.contexts is not a list of [type, address]`);
    if (!isTime(o.due)) bad(`${at}.due is not a time or null`);
    if (typeof o.held !== 'boolean' || typeof o.queued !== 'boolean') bad(`${at}.held or queued is not a boolean`);
    const r = o.request;
    if (r !== null && !(isObject(r) && ['input', 'inputLen', 'output', 'outputLen', 'code', 'info'].every((k) => isU32(r[k])) && (r.status === null || isU32(r.status)))) bad(`${at}.request is not null or a request`);
    const p = o.pnp;
    if (p !== null && !(isObject(p) && isU32(p.prepare) && isU32(p.release) && isU32(p.ioInCallerContext))) bad(`${at}.pnp is not null or the PnP callbacks`);
    const c = o.control;
    if (c !== null && !(isObject(c) && (c.name === null || typeof c.name === 'string') && typeof c.finished === 'boolean')) bad(`${at}.control is not null or {name, finished}`);
    if (o.link !== null && typeof o.link !== 'string') bad(`${at}.link is not null or a name`);
    // A parent is created before its children: it comes earlier in the list.
    if (o.parent !== 0 && !handles.has(o.parent as number)) bad(`${at}.parent 0x${(o.parent as number).toString(16)} is not an earlier object`);
    handles.add(o.handle as number);
  });
  for (const [i, o] of (img.objects as WdfObjectImage[]).entries()) if (o.queue !== 0 && !handles.has(o.queue)) bad(`objects[${i}].queue names no object of the image`);
  const d = img.driver;
  if (d !== null && !(isObject(d) && isU32(d.handle) && isU32(d.add) && isU32(d.unload))) bad('driver is not null or {handle, add, unload}');
  if (!Array.isArray(img.devices) || !img.devices.every((h) => isU32(h) && handles.has(h))) bad('devices is not a list of the image\'s objects');
  if (!Array.isArray(img.registry) || !img.registry.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && isU32(e[1]))) bad('registry is not a list of [name, value]');
}
