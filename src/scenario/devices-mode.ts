// What a scenario's drivers are, and where its device module is: the facts about a
// scenario that the emulator's threads need at run time, kept apart from the scenario's
// schema (model.ts, which re-exports them). A worker thread running a share of an explore
// or an emulated job imports these, not the schema, and so does not load zod: zod was 95
// of the 132 modules each worker loaded as it started (~100 ms of CPU on the development
// machine, paid before the worker could take its first range).

import { SAMPLE_DEVICE } from '../device-api/load.ts';

/**
 * What a run's drivers are (scenario `devices`, `--devices`): `twin` the TypeScript twins
 * on both sides; `c` the device's C VSP (WebAssembly) with the twin guest; `c-linux` and
 * `c-windows` the C VSP with the device's C Linux or Windows guest driver as the guest.
 */
export const DEVICES_MODES = ['twin', 'c', 'c-linux', 'c-windows'] as const;
export type DevicesMode = (typeof DEVICES_MODES)[number];

/** Whether a run with these devices has the C VSP on its hosts (every mode but twin). */
export function usesCDrivers(d: DevicesMode | undefined): boolean {
  return d !== undefined && d !== 'twin';
}

/** The C guest driver a run's devices name, or null (the twin guest). */
export function cGuestOf(d: DevicesMode | undefined): 'linux' | 'windows' | null {
  return d === 'c-linux' ? 'linux' : d === 'c-windows' ? 'windows' : null;
}

/** The path of a scenario's device module: its own (absolute), or the sample device. */
export function devicePath(s: { device?: string | undefined }): string {
  return s.device ?? SAMPLE_DEVICE;
}
