// How blockq's C VSP builds for the emulator: the recipe src/devices/wasm/build.ts takes.
// Every .c of this folder, and the save helper any VSP may use
// (lab/drivers/common/vsp-save-helper.c, its header found by <...>); the build adds the
// stand-in WDK headers, the trace library and the shim's C. A device author's own
// driver needs no more than this.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DRIVERS_DIR, cSourcesIn, type DriverRecipe } from '../../../src/devices/wasm/build.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** lab/drivers/common: the save helper's source and header. */
const SAVE_HELPER_DIR = join(DRIVERS_DIR, 'common');

export function blockqVspRecipe(): DriverRecipe {
  return {
    name: 'blockq-vsp', world: 'kmdf', root: HERE,
    sources: [...cSourcesIn(HERE, '.'), join(SAVE_HELPER_DIR, 'vsp-save-helper.c')],
    headerDirs: ['.'], includeDirs: [SAVE_HELPER_DIR],
  };
}

/** CTL_CODE(0x8B51, function, METHOD_BUFFERED, access): blockq-control.h. */
export const BLOCKQ_IOCTL = {
  command: 0x8b51a004,
  counters: 0x8b516008,
  export: 0x8b516010,
  import: 0x8b51a014,
} as const;
