// One channel of blockq's C VSP on an emulated host, with the face the scenario executor
// gives a host VSP (HostVsp; the twin's is ../vsp.ts), so `devices: c` runs a blockq
// scenario on the C driver. The face is every C VSP's (CHostChannel,
// src/device-api/c-host-channel.ts); what is blockq's is said here: its control
// (../control.ts: `open`, `event`, `note`, `save`, `detach`, `discard`, `restore`,
// `resume`, where a lab job's lines would come from), the counter that says its answer
// timer has work (`outstanding`), and how a packet's context is keyed (vsp-key.ts).
// blockq's VSP has `rescind ch=N`, offers a rescinded channel's new instance at `open`,
// and ends in its Closed callback what KMCL hands back after a guest's close
// (../PROTOCOL.md "Rescind and guest close"): the re-offering face, so a scenario may
// rescind and close from the guest, and a restore the VSP refuses falls back to a
// rescind and a new offer, as with the twins.

import type { Faults } from '../../../src/vmbus/faults.ts';
import { ReofferingCHostChannel, type CHostChannelSpec } from '../../../src/device-api/c-host-channel.ts';
import type { BlockqCVsp } from './vsp.ts';
import { keyTxContext } from './vsp-key.ts';
import { channel, channelInstance, command } from '../control.ts';

export const BLOCKQ_C_HOST: CHostChannelSpec<BlockqCVsp> = {
  name: 'blockq C VSP',
  control: { channel, channelInstance, command },
  timerCounter: 'outstanding',
  keyTxContext,
};

export class BlockqCHostVsp extends ReofferingCHostChannel<BlockqCVsp> {
  constructor(vsp: BlockqCVsp, ch: number, ringPages: number, quota: number, faults: Faults) {
    super(vsp, BLOCKQ_C_HOST, { ch, ringPages, quota, faults });
  }
}

/** The instance GUID whose last 8 hex digits are the channel number (control.ts's). */
export function instanceGuid(ch: number): string {
  return channelInstance(ch);
}
