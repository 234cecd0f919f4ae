// The sample C VSP (lab/drivers/vsp) running on the emulator (windows-driver.ts says
// how). The channels it offers are the emulator's own server Channels; whoever plays
// the guest connects to them (`offered`), exactly as to a TypeScript twin's channel.

import type { Channel } from '../../../src/vmbus/channel.ts';
import type { ChannelRec } from '../../../src/devices/wasm/kmcl-shim.ts';
import { DriverCommandError, WindowsDriver, type WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { SAMPLE_IOCTL } from './control.ts';
import { vspRecipe } from './recipes.ts';

/** sizeof(struct sample_vsp_state), lab/drivers/common/sample-control.h */
const VSP_STATE_HEADER = 48;

export type CVspOptions = WindowsDriverOptions;

export class CVsp extends WindowsDriver {
  /** offered server channels by channel number (the instance GUID's last 8 hex digits) */
  private readonly offers: Map<number, ChannelRec>;

  constructor(opts: CVspOptions) {
    const offers = new Map<number, ChannelRec>();
    super(vspRecipe(), 'host', opts, {
      enabled: (r) => {
        const inst = r.ch.config.interfaceInstance ?? '';
        offers.set(Number.parseInt(inst.slice(-8), 16), r);
      },
    }, SAMPLE_IOCTL);
    this.offers = offers;
    this.load();
  }

  /** What the last save of channel `ch` got from VmbChannelSaveContinue, in order. */
  savedOutputs(ch: number): Uint8Array[] {
    return this.offers.get(ch)?.saveOutputs ?? [];
  }

  /**
   * IOCTL_SAMPLE_VSP_EXPORT: channel `ch`'s saved state as the VSP writes it for the
   * VM's saved state (after `save ch=N`), opaque to the bench.
   */
  exportState(ch: number): Uint8Array {
    const size = this.counters().find((c) => c.ch === ch)?.save_blob_bytes ?? 0;
    const ref = new Uint8Array(4);
    new DataView(ref.buffer).setUint32(0, ch, true);
    const r = this.wdf.ioctl(SAMPLE_IOCTL.vspExport, ref, VSP_STATE_HEADER + size);
    if (r.status !== 0) throw new DriverCommandError(this.rt.name, `export ch=${ch}`, r.status);
    return r.output;
  }

  /** IOCTL_SAMPLE_VSP_IMPORT: the NTSTATUS; 0 when the saved state is now the driver's. */
  importState(state: Uint8Array): number {
    return this.wdf.ioctl(SAMPLE_IOCTL.vspImport, state, 0).status;
  }

  /** The server channel offered as channel number `ch`, or null. */
  offered(ch: number): Channel | null {
    const r = this.offers.get(ch);
    return r && this.kmcl.channels.has(r.handle) ? r.ch : null;
  }
}
