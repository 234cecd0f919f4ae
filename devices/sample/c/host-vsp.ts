// One channel of the sample's C VSP on an emulated host, with the face the scenario
// executor gives a host VSP (the twin's: devices/sample/vsp.ts), so `devices: c` runs a
// scenario on the C driver. The face itself is every C VSP's (ReofferingCHostChannel,
// src/device-api/c-host-channel.ts, which says how each HostVsp call becomes the VSP's
// control lines); what is the sample's is said here: its control (devices/sample/control.ts,
// the one place a real lab job's lines come from too), the counter that says its hold
// timer has work (`held`), how a packet's context is keyed (vsp-key.ts), and that it
// re-offers: `rescind ch=N`, `open ... force-new-channel` for a FORCE_NEW_CHANNEL channel
// (at a restore its saved state is imported for the numbering, not restored: the bench
// rescinds it and offers it anew), and a guest's close seen in its Closed callback
// (vsp-channel.c, VspEvtChannelClosed).

import type { Faults } from '../../../src/vmbus/faults.ts';
import { ReofferingCHostChannel, type CHostChannelSpec } from '../../../src/device-api/c-host-channel.ts';
import type { CVsp } from './vsp.ts';
import { keyTxContext } from './vsp-key.ts';
import { sampleControl } from '../control.ts';

export const SAMPLE_C_HOST: CHostChannelSpec<CVsp> = {
  name: 'C VSP',
  control: sampleControl,
  timerCounter: 'held',
  keyTxContext,
};

export class CHostVsp extends ReofferingCHostChannel<CVsp> {
  constructor(vsp: CVsp, ch: number, ringPages: number, quota: number, faults: Faults, forceNewChannel = false) {
    super(vsp, SAMPLE_C_HOST, { ch, ringPages, quota, faults, forceNewChannel });
  }
}

/**
 * The instance GUID whose last 8 hex digits are the channel number (PROTOCOL.md "Channel
 * numbers"): the sample's control's, as a lab job offers the channel, so the emulated
 * guest binds the id a real one would.
 */
export function instanceGuid(ch: number): string {
  return sampleControl.channelInstance(ch);
}
