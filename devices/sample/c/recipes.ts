// How the sample's C drivers (lab/drivers) build for the emulator: one recipe each for
// src/devices/wasm/build.ts. The build adds the world (stand-in WDK or Linux headers,
// the trace library, the shim's C); a recipe names only the driver's own files.

import { fileURLToPath } from 'node:url';
import { cSourcesIn, type DriverRecipe } from '../../../src/devices/wasm/build.ts';

const DRIVERS = fileURLToPath(new URL('../../../lab/drivers', import.meta.url));

/** The protocol and the command parser, compiled into every sample driver. */
const COMMON = ['common/sample-protocol.c', 'common/sample-command.c'];

/** The KMDF + KMCL server driver: lab/drivers/vsp. */
export function vspRecipe(): DriverRecipe {
  return { name: 'vsp', world: 'kmdf', root: DRIVERS, sources: [...cSourcesIn(DRIVERS, 'vsp'), ...COMMON, 'common/vsp-save-helper.c'], headerDirs: ['common', 'vsp'] };
}

/** The KMDF + KMCL client driver: lab/drivers/guest-windows. */
export function guestWindowsRecipe(): DriverRecipe {
  return { name: 'guest-windows', world: 'kmdf', root: DRIVERS, sources: [...cSourcesIn(DRIVERS, 'guest-windows'), ...COMMON], headerDirs: ['common', 'guest-windows'] };
}

/** The Linux module: lab/drivers/guest-linux. */
export function guestLinuxRecipe(): DriverRecipe {
  return {
    name: 'guest-linux',
    world: 'linux',
    root: DRIVERS,
    // The three one-line wrappers only exist for Kbuild; the common files go in directly.
    sources: [...cSourcesIn(DRIVERS, 'guest-linux').filter((f) => !/sample_(protocol|command|guest_debugfs)\.c$/.test(f)), ...COMMON, 'common/guest-debugfs.c'],
    headerDirs: ['guest-linux'],
    includeDirs: ['common'],
    // What Kbuild's W=1 turns off again after -Wextra.
    cflags: ['-Wno-unused-parameter', '-Wno-sign-compare'],
  };
}
