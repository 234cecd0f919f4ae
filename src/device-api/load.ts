// Loading device modules by path, and the loaded ones of this thread.
//
// A module is an ES module (TypeScript or JavaScript) whose default export is a
// DeviceModule (device-module.ts). It is loaded by `import()` at run time, in every thread
// that runs a scenario (the emulator's worker threads load it again from the path the
// scenario carries), so a scenario crossing to a worker carries the path, never the module.
//
// A scenario that names no device gets the sample device (devices/sample/device.ts). The
// core knows it by path only and imports nothing from it.
//
// Invariant: `deviceOf(path)` answers only for a path `loadDevice` finished loading in this
// thread; loading is idempotent per absolute path.

import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InputError, type InputLocation } from '../errors.ts';
import { statInput } from '../input-files.ts';
import type { DeviceModule } from './device-module.ts';

/** The sample device's module: the default when a scenario or lab names none. */
export const SAMPLE_DEVICE = fileURLToPath(new URL('../../devices/sample/device.ts', import.meta.url));

const loaded = new Map<string, DeviceModule>();
const loading = new Map<string, Promise<DeviceModule>>();

/** A `device:` field's value as an absolute path, resolved against the file that names it. */
export function resolveDevicePath(spec: string, namedIn: string | undefined): string {
  if (isAbsolute(spec)) return spec;
  return resolve(namedIn === undefined ? process.cwd() : resolve(namedIn, '..'), spec);
}

/**
 * Loads the module at `path` (absolute) and checks it implements the interface. A missing
 * file, a module that does not load, or a field missing or of the wrong kind is an
 * InputError (exit 2) naming `where` (the file and field that named the module) and the
 * module's field.
 */
export function loadDevice(path: string, where: InputLocation = {}): Promise<DeviceModule> {
  const done = loaded.get(path);
  if (done) return Promise.resolve(done);
  let p = loading.get(path);
  if (!p) {
    p = importDevice(path, where).finally(() => loading.delete(path));
    loading.set(path, p);
  }
  return p;
}

async function importDevice(path: string, where: InputLocation): Promise<DeviceModule> {
  const named = where.field ? `device module ${path} (named by ${where.field})` : `device module ${path}`;
  await statInput(path, { where });
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`${named} does not load: ${(e as Error).message.split('\n')[0]}`, where, { cause: e });
  }
  const m = ns['default'];
  const problem = checkDeviceModule(m);
  if (problem) {
    throw new InputError(`${named} does not implement the device module interface: ${problem}`, where, {
      hint: 'its default export must be a DeviceModule (src/device-api/device-module.ts)',
    });
  }
  loaded.set(path, m as DeviceModule);
  return m as DeviceModule;
}

/** The loaded module at `path`. Throws when it was not loaded in this thread (a bench bug, not bad input). */
export function deviceOf(path: string): DeviceModule {
  const m = loaded.get(path);
  if (!m) throw new Error(`device module ${path} is used before it was loaded in this thread (loadDevice)`);
  return m;
}

/** What is wrong with `m` as a DeviceModule, naming the field; null when nothing is. */
export function checkDeviceModule(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'no default export object';
  const d = m as Record<string, unknown>;
  if (typeof d['name'] !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(d['name'])) return 'field "name": a name of letters, digits, dot, dash or underscore';
  const size = d['messageSize'] as Record<string, unknown> | undefined;
  if (typeof size !== 'object' || size === null) return 'field "messageSize": missing';
  for (const k of ['min', 'max'] as const) {
    const v = size[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1 << 20) return `field "messageSize.${k}": an integer from 1 to 1048576`;
  }
  if ((size['min'] as number) > (size['max'] as number)) return 'field "messageSize": min is above max';
  const c = d['completions'] as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null || typeof c['guestSend'] !== 'boolean' || typeof c['hostSend'] !== 'boolean') {
    return 'field "completions": { guestSend: boolean, hostSend: boolean }';
  }
  if (d['statusRule'] !== 'opaque' && typeof d['statusRule'] !== 'function') return 'field "statusRule": a function (tx, payloadIntact) => 8 hex digits, or "opaque"';
  const e = d['emulator'];
  if (e !== undefined) {
    if (typeof e !== 'object' || e === null) return 'field "emulator": an object';
    for (const f of ['hostVsp', 'newGuestState', 'guest', 'snapshotGuest', 'reviveGuest'] as const) {
      if (typeof (e as Record<string, unknown>)[f] !== 'function') return `field "emulator.${f}": a function`;
    }
    const cHost = (e as Record<string, unknown>)['cHost'];
    if (cHost !== undefined && typeof cHost !== 'function') return 'field "emulator.cHost": a function';
  }
  const ctl = d['control'];
  if (ctl !== undefined) {
    if (typeof ctl !== 'object' || ctl === null) return 'field "control": an object';
    const c = ctl as Record<string, unknown>;
    for (const f of ['command', 'channelInstance', 'channel', 'counters'] as const) {
      if (typeof c[f] !== 'function') return `field "control.${f}": a function`;
    }
    // No tool is allowed (a device for the emulator only: a real lab then refuses it), a malformed one is not.
    const tool = c['tool'] as Record<string, unknown> | undefined;
    if (tool !== undefined && (typeof tool !== 'object' || tool === null || typeof tool['program'] !== 'string' || tool['program'] === '' || typeof tool['args'] !== 'function')) {
      return 'field "control.tool": { program: the control tool\'s path on Windows, args: (verb) => string[] }';
    }
    const begin = c['begin'];
    if (begin !== undefined && (!Array.isArray(begin) || !begin.every((b: unknown) => typeof b === 'object' && b !== null && ['vsp', 'guest'].includes((b as Record<string, unknown>)['to'] as string) && typeof (b as Record<string, unknown>)['line'] === 'string'))) {
      return 'field "control.begin": a list of { to: "vsp" | "guest", line: string }';
    }
    const lc = c['loopbackChannels'];
    // 0: the device has no loopback client (blockq), so no loopback job is applicable.
    if (lc !== undefined && (typeof lc !== 'number' || !Number.isInteger(lc) || lc < 0)) return 'field "control.loopbackChannels": a whole number from 0 (0: no loopback client)';
    const lg = c['linuxGuest'] as Record<string, unknown> | undefined;
    if (lg !== undefined && (typeof lg !== 'object' || lg === null || typeof lg['controlFile'] !== 'string' || !lg['controlFile'].startsWith('/'))) {
      return 'field "control.linuxGuest.controlFile": an absolute path in the guest';
    }
    if (lg !== undefined && lg['fullRing'] !== undefined && lg['fullRing'] !== 'wait' && lg['fullRing'] !== 'queue') {
      return 'field "control.linuxGuest.fullRing": "wait" or "queue"';
    }
  }
  return null;
}
