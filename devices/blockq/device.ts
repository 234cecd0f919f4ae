// The blockq device module (src/device-api/device-module.ts): a second device, written only
// against the interface, unlike the sample in the ways that matter to the bench: replies
// of varying size, requests answered out of order, several outstanding per channel, and a
// SaveBuf record whose size varies by packet. PROTOCOL.md beside this file specifies it.
//
// It has TypeScript twins only: no C drivers yet, so no `emulator.cHost` (`devices: c` is
// refused) and no `control` (a real lab job is refused, exit 2).

import type { DeviceModule, GuestDriver, HostVsp } from '../../src/device-api/device-module.ts';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, statusFor, statusHex } from './protocol.ts';
import { BlockqVsp } from './vsp.ts';
import { BlockqGuest, newBlockqState, reviveBlockq, snapshotBlockq, type BlockqGuestState } from './guest.ts';

const blockq: DeviceModule = {
  name: 'blockq',
  messageSize: { min: HEADER_SIZE, max: MAX_MESSAGE_SIZE },
  completions: { guestSend: true, hostSend: true },
  statusRule: (tx, intact) => statusHex(statusFor(tx, intact)),
  emulator: {
    hostVsp: (o): HostVsp => new BlockqVsp(o),
    newGuestState: (channels, firstTx) => newBlockqState(channels, firstTx),
    guest: (state, rings, sink, host): GuestDriver => new BlockqGuest(state as BlockqGuestState, rings, sink, host),
    snapshotGuest: (state, now) => snapshotBlockq(state as BlockqGuestState, now),
    reviveGuest: (image, now) => reviveBlockq(image, now),
  },
};

export default blockq;
