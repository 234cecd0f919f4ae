// A device's C VSP (KMDF + KMCL) loaded on the emulator, for any device: the channels it
// offers, found by channel number, and the export and import of a channel's saved state
// through the device's own IOCTLs. What differs between devices is given: the recipe, the
// text command and counters IOCTLs, the saved-state IOCTLs and the size of the state's
// header. The face the executor drives is c-host-channel.ts.

import type { Channel } from '../vmbus/channel.ts';
import type { DriverRecipe } from '../devices/wasm/build.ts';
import type { ChannelRec } from '../devices/wasm/kmcl-shim.ts';
import { DriverCommandError, WindowsDriver, type TextControlCodes, type WindowsDriverOptions } from '../devices/wasm/windows-driver.ts';

/** A C VSP's saved-state IOCTLs: export after `save ch=N` (input: the channel number, u32), import before `restore`. */
export interface SavedStateIoctls {
  export: number;
  import: number;
  /** bytes of the exported state before the saved blob (the device's state header) */
  header: number;
}

/**
 * A C VSP (KMDF + KMCL) loaded on the emulator. The channels it offers are the emulator's
 * own server Channels, found by channel number: the last 8 hex digits of the instance GUID
 * (PROTOCOL.md "Channel numbers").
 */
export class CVspDriver extends WindowsDriver {
  /** offered server channels by channel number */
  protected readonly offers: Map<number, ChannelRec>;
  /** the device control's begin lines were sent (CHostChannel.begin): once per driver, as a lab job sends them once per VSP */
  begun = false;
  private readonly saved: SavedStateIoctls;

  constructor(recipe: DriverRecipe, opts: WindowsDriverOptions, control: TextControlCodes, saved: SavedStateIoctls) {
    const offers = new Map<number, ChannelRec>();
    super(recipe, 'host', opts, {
      enabled: (r) => offers.set(Number.parseInt((r.ch.config.interfaceInstance ?? '').slice(-8), 16), r),
    }, control);
    this.offers = offers;
    this.saved = saved;
    this.load();
  }

  /** Channel `ch`'s saved state as the VSP writes it for the VM's saved state (after `save ch=N`), opaque to the bench. */
  exportState(ch: number): Uint8Array {
    const size = this.counters().find((c) => c.ch === ch)?.save_blob_bytes ?? 0;
    const ref = new Uint8Array(4);
    new DataView(ref.buffer).setUint32(0, ch, true);
    const r = this.ioctl(this.saved.export, ref, this.saved.header + size);
    if (r.status !== 0) throw new DriverCommandError(this.rt.name, `export ch=${ch}`, r.status);
    return r.output;
  }

  /** The import's NTSTATUS; 0 when the saved state is now the driver's. */
  importState(state: Uint8Array): number {
    return this.ioctl(this.saved.import, state, 0).status;
  }

  /** The server channel offered as channel number `ch`, or null. */
  offered(ch: number): Channel | null {
    const r = this.offers.get(ch);
    return r && this.kmcl.channels.has(r.handle) ? r.ch : null;
  }
}
