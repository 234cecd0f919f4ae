// blockq's C VSP (this folder's *.c) running on the emulator: a KMDF + KMCL driver built
// to wasm32 (recipe.ts) and loaded by the shim (src/devices/wasm/windows-driver.ts), with
// what every C VSP shares (CVspDriver, src/device-api/c-vsp-driver.ts). It is driven
// only through its control interface (blockq-control.h): the command IOCTL, the counters,
// and the export and import of a channel's saved state.

import { CVspDriver } from '../../../src/device-api/c-vsp-driver.ts';
import type { WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { BLOCKQ_IOCTL, blockqVspRecipe } from './recipe.ts';

/** sizeof(struct blockq_state), blockq-control.h */
const STATE_HEADER = 48;

export class BlockqCVsp extends CVspDriver {
  constructor(opts: WindowsDriverOptions) {
    super(blockqVspRecipe(), opts, BLOCKQ_IOCTL, { export: BLOCKQ_IOCTL.export, import: BLOCKQ_IOCTL.import, header: STATE_HEADER });
  }
}
