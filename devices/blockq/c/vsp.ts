// blockq's C VSP (this folder's *.c) running on the emulator: a KMDF + KMCL driver built
// to wasm32 (recipe.ts) and loaded by the shim (src/devices/wasm/windows-driver.ts).
// The channels it offers are the emulator's own server Channels. It is driven only
// through its control interface (blockq-control.h): the command IOCTL, the counters,
// and the export and import of a channel's saved state.

import type { Channel } from '../../../src/vmbus/channel.ts';
import type { ChannelRec } from '../../../src/devices/wasm/kmcl-shim.ts';
import { DriverCommandError, WindowsDriver, type WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { BLOCKQ_IOCTL, blockqVspRecipe } from './recipe.ts';

/** sizeof(struct blockq_state), blockq-control.h */
const STATE_HEADER = 48;

export class BlockqCVsp extends WindowsDriver {
  /** offered server channels by channel number (the instance GUID's last 8 hex digits) */
  private readonly offers: Map<number, ChannelRec>;

  constructor(opts: WindowsDriverOptions) {
    const offers = new Map<number, ChannelRec>();
    super(blockqVspRecipe(), 'host', opts, {
      enabled: (r) => offers.set(Number.parseInt((r.ch.config.interfaceInstance ?? '').slice(-8), 16), r),
    }, BLOCKQ_IOCTL);
    this.offers = offers;
    this.load();
  }

  /** IOCTL_BLOCKQ_EXPORT: channel `ch`'s saved state (after `save ch=N`), opaque to the bench. */
  exportState(ch: number): Uint8Array {
    const size = this.counters().find((c) => c.ch === ch)?.save_blob_bytes ?? 0;
    const ref = new Uint8Array(4);
    new DataView(ref.buffer).setUint32(0, ch, true);
    const r = this.ioctl(BLOCKQ_IOCTL.export, ref, STATE_HEADER + size);
    if (r.status !== 0) throw new DriverCommandError(this.rt.name, `export ch=${ch}`, r.status);
    return r.output;
  }

  /** IOCTL_BLOCKQ_IMPORT: the NTSTATUS; 0 when the saved state is now the driver's. */
  importState(state: Uint8Array): number {
    return this.ioctl(BLOCKQ_IOCTL.import, state, 0).status;
  }

  /** The server channel offered as channel number `ch`, or null. */
  offered(ch: number): Channel | null {
    const r = this.offers.get(ch);
    return r && this.kmcl.channels.has(r.handle) ? r.ch : null;
  }
}
