// The sample C VSP (lab/drivers/vsp) running on the emulator (windows-driver.ts says
// how; CVspDriver, src/device-api/c-vsp-driver.ts, what every C VSP shares). The
// channels it offers are the emulator's own server Channels; whoever plays the guest
// connects to them (`offered`), exactly as to a TypeScript twin's channel.

import { CVspDriver } from '../../../src/device-api/c-vsp-driver.ts';
import type { WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { SAMPLE_IOCTL } from './control.ts';
import { vspRecipe } from './recipes.ts';

/** sizeof(struct sample_vsp_state), lab/drivers/common/sample-control.h */
const VSP_STATE_HEADER = 48;

export type CVspOptions = WindowsDriverOptions;

export class CVsp extends CVspDriver {
  constructor(opts: CVspOptions) {
    // IOCTL_SAMPLE_VSP_EXPORT / _IMPORT carry a channel's saved state out and in.
    super(vspRecipe(), opts, SAMPLE_IOCTL, { export: SAMPLE_IOCTL.vspExport, import: SAMPLE_IOCTL.vspImport, header: VSP_STATE_HEADER });
  }

  /** What the last save of channel `ch` got from VmbChannelSaveContinue, in order. */
  savedOutputs(ch: number): Uint8Array[] {
    return this.offers.get(ch)?.saveOutputs ?? [];
  }
}
