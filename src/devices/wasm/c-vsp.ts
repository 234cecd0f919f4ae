// The sample C VSP (lab/drivers/vsp) running on the emulator (windows-driver.ts says
// how). The channels it offers are the emulator's own server Channels; whoever plays
// the guest connects to them (`offered`), exactly as to a TypeScript twin's channel.

import type { Channel } from '../../vmbus/channel.ts';
import type { ChannelRec } from './kmcl-shim.ts';
import { WindowsDriver, type WindowsDriverOptions } from './windows-driver.ts';

export type CVspOptions = WindowsDriverOptions;

export class CVsp extends WindowsDriver {
  /** offered server channels by channel number (the instance GUID's last 8 hex digits) */
  private readonly offers: Map<number, ChannelRec>;

  constructor(opts: CVspOptions) {
    const offers = new Map<number, ChannelRec>();
    super('vsp', 'host', opts, {
      enabled: (r) => {
        const inst = r.ch.config.interfaceInstance ?? '';
        offers.set(Number.parseInt(inst.slice(-8), 16), r);
      },
    });
    this.offers = offers;
    this.load();
  }

  /** What the last save of channel `ch` got from VmbChannelSaveContinue, in order. */
  savedOutputs(ch: number): Uint8Array[] {
    return this.offers.get(ch)?.saveOutputs ?? [];
  }

  /** The server channel offered as channel number `ch`, or null. */
  offered(ch: number): Channel | null {
    const r = this.offers.get(ch);
    return r && this.kmcl.channels.has(r.handle) ? r.ch : null;
  }
}
