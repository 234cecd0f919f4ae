// Option values shared by several commands, checked once with messages that name the option.
import { statSync } from 'node:fs';
import { InputError } from '../errors.ts';
import { describeFsError } from '../input-files.ts';
import { FAULT_CLASS, FAULT_MODES, type FaultMode } from '../vmbus/faults.ts';
import { GAP_CHOICES, type GapChoices } from '../vmbus/choices.ts';
import { DEVICES_MODES, type DevicesMode } from '../scenario/model.ts';

export function parseSeed(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) {
    throw new InputError(`--seed must be an integer from 0 to 4294967295, got "${v}"`);
  }
  return Number(v);
}

export function parsePositiveInt(option: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InputError(`${option} must be a positive integer, got "${v}"`);
  return Number(v);
}

/**
 * `--fault NAME`: a platform bug for the emulator to imitate (vmbus/faults.ts), so a user
 * can watch the bench catch it. Repeatable, or comma-separated; the help lists every name.
 */
export const FAULT_HELP =
  `imitate a platform bug so the bench catches it; repeatable. One of: ${FAULT_MODES.map((f) => `${f} (${FAULT_CLASS[f].join('/')})`).join(', ')}`;

export function collectFaults(v: string, prev: FaultMode[] = []): FaultMode[] {
  const out = [...prev];
  for (const name of v.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    if (!(FAULT_MODES as readonly string[]).includes(name)) {
      throw new InputError(`--fault: unknown fault "${name}"; use one of ${FAULT_MODES.join(', ')}`);
    }
    if (!out.includes(name as FaultMode)) out.push(name as FaultMode);
  }
  return out;
}

/**
 * An output directory option: it may not exist yet, but if something is there it must be
 * a directory (a file there made mkdir fail with EEXIST, reported as an internal error).
 */
export function checkOutDir(option: string, path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return path;
    throw new InputError(`${option} ${path}: ${describeFsError(e)}`);
  }
  if (!st.isDirectory()) throw new InputError(`${option} ${path}: not a directory (a file of that name exists); name a directory`);
  return path;
}

/** `--choice key=value`, repeatable: a documented-gap choice (vmbus/choices.ts) for the model. */
export const CHOICE_HELP = `a documented-gap choice for the model, key=value (repeatable); keys: ${GAP_CHOICES.map((c) => c.key).join(', ')}`;

export function collectChoice(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** The --choice values as a partial set of choices; an unknown key or option is an InputError naming it. */
export function parseChoices(list: readonly string[]): Partial<GapChoices> | undefined {
  if (list.length === 0) return undefined;
  const out: Record<string, string | boolean> = {};
  for (const item of list) {
    const [key, value] = item.split('=', 2);
    const def = GAP_CHOICES.find((c) => c.key === key);
    if (!def || value === undefined) {
      throw new InputError(`--choice ${item}: expected key=value with key one of ${GAP_CHOICES.map((c) => c.key).join(', ')}`);
    }
    const parsed = value === 'true' ? true : value === 'false' ? false : value;
    if (!def.options.includes(parsed)) throw new InputError(`--choice ${item}: ${key} is one of ${def.options.join(', ')}`);
    out[key!] = parsed;
  }
  return out as Partial<GapChoices>;
}

/** --devices: the TypeScript twins, the C VSP, or the C VSP and a C guest (DEVICES_MODES); undefined when not given. */
export function parseDevices(value: string | undefined): DevicesMode | undefined {
  if (value !== undefined && !(DEVICES_MODES as readonly string[]).includes(value)) {
    throw new InputError(`--devices must be one of ${DEVICES_MODES.join(', ')}, not '${value}'`, { field: '--devices' });
  }
  return value as DevicesMode | undefined;
}
