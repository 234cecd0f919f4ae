// How blockq's C drivers build for the emulator: the recipes src/devices/wasm/build.ts
// takes. The VSP also compiles the save helper any VSP may use
// (lab/drivers/common/vsp-save-helper.c, its header found by <...>), and the Linux guest
// the debugfs files any bench guest may use (lab/drivers/common/guest-debugfs.c). The build adds the
// world (stand-in WDK or Linux headers), the trace library and the shim's C. A device
// author's own drivers need no more than this.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DRIVERS_DIR, cSourcesIn, type DriverRecipe } from '../../../src/devices/wasm/build.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** lab/drivers/common: the save helper's and the guest debugfs helper's sources and headers. */
const COMMON_DIR = join(DRIVERS_DIR, 'common');

/** The VSP: every .c of this folder (KMDF + KMCL). */
export function blockqVspRecipe(): DriverRecipe {
  return {
    name: 'blockq-vsp', world: 'kmdf', root: HERE,
    sources: [...cSourcesIn(HERE, '.'), join(COMMON_DIR, 'vsp-save-helper.c')],
    headerDirs: ['.'], includeDirs: [COMMON_DIR],
  };
}

/** The Linux guest module (guest-linux/), with the VSP's protocol and command parser and the debugfs helper as its Kbuild compiles them in. */
export function blockqGuestLinuxRecipe(): DriverRecipe {
  return {
    name: 'blockq-guest-linux',
    world: 'linux',
    root: HERE,
    // The three one-line wrappers only exist for Kbuild; the shared files go in directly.
    sources: [...cSourcesIn(HERE, 'guest-linux').filter((f) => !/bq_(protocol|command|guest_debugfs)\.c$/.test(f)), 'blockq-protocol.c', 'blockq-command.c', join(COMMON_DIR, 'guest-debugfs.c')],
    headerDirs: ['guest-linux'],
    includeDirs: ['.', COMMON_DIR],
    // What Kbuild passes (the module's name) and what its W=1 turns off again after -Wextra.
    cflags: ['-DKBUILD_MODNAME="vmbus_blockq_guest"', '-Wno-unused-parameter', '-Wno-sign-compare'],
  };
}

/** CTL_CODE(0x8B51, function, METHOD_BUFFERED, access): blockq-control.h. */
export const BLOCKQ_IOCTL = {
  command: 0x8b51a004,
  counters: 0x8b516008,
  export: 0x8b516010,
  import: 0x8b51a014,
} as const;
