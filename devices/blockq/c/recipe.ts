// How blockq's C VSP builds for the emulator: the recipe src/devices/wasm/build.ts takes.
// Every .c of this folder; the build adds the stand-in WDK headers, the trace library
// and the shim's C. A device author's own driver needs no more than this.

import { fileURLToPath } from 'node:url';
import { cSourcesIn, type DriverRecipe } from '../../../src/devices/wasm/build.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));

export function blockqVspRecipe(): DriverRecipe {
  return { name: 'blockq-vsp', world: 'kmdf', root: HERE, sources: cSourcesIn(HERE, '.'), headerDirs: ['.'] };
}

/** CTL_CODE(0x8B51, function, METHOD_BUFFERED, access): blockq-control.h. */
export const BLOCKQ_IOCTL = {
  command: 0x8b51a004,
  counters: 0x8b516008,
  export: 0x8b516010,
  import: 0x8b51a014,
} as const;
