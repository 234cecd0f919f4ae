// Option values shared by several commands, checked once with messages that name the option.
import { InputError } from '../errors.ts';

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
