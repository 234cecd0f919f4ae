// One channel of blockq's C VSP on an emulated host, with the face the scenario executor
// gives a host VSP (HostVsp; the twin's is ../vsp.ts), so `devices: c` runs a blockq
// scenario on the C driver. The face is every C VSP's (CHostChannel,
// src/device-api/c-host-channel.ts); what is blockq's is said here: its control
// (../control.ts: `open`, `event`, `note`, `save`, `detach`, `discard`, `restore`,
// `resume`, where a lab job's lines would come from), the counter that says its answer
// timer has work (`outstanding`), and how a packet's context is keyed (vsp-key.ts).
// blockq's VSP has no rescind, so the plain face: a scenario that rescinds is refused,
// and a restore the VSP refuses is a bad saved VM.

import type { Faults } from '../../../src/vmbus/faults.ts';
import { CHostChannel, type CHostChannelSpec } from '../../../src/device-api/c-host-channel.ts';
import type { BlockqCVsp } from './vsp.ts';
import { keyTxContext } from './vsp-key.ts';
import { channel, channelInstance, command } from '../control.ts';

export const BLOCKQ_C_HOST: CHostChannelSpec<BlockqCVsp> = {
  name: 'blockq C VSP',
  control: { channel, channelInstance, command },
  timerCounter: 'outstanding',
  keyTxContext,
};

export class BlockqCHostVsp extends CHostChannel<BlockqCVsp> {
  constructor(vsp: BlockqCVsp, ch: number, ringPages: number, quota: number, faults: Faults) {
    super(vsp, BLOCKQ_C_HOST, { ch, ringPages, quota, faults });
  }
}

/** The instance GUID whose last 8 hex digits are the channel number (control.ts's). */
export function instanceGuid(ch: number): string {
  return channelInstance(ch);
}
