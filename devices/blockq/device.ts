// The blockq device module (src/device-api/device-module.ts): a second device, written only
// against the interface, unlike the sample in the ways that matter to the bench: replies
// of varying size, requests answered out of order, several outstanding per channel, and a
// SaveBuf record whose size varies by packet. PROTOCOL.md beside this file specifies it.
//
// Its host side exists twice: the TypeScript twin (vsp.ts) and a C VSP (c/, KMDF + KMCL,
// built to wasm32 for the emulator: `emulator.cHost`, `devices: c`); its guest side too:
// the twin (guest.ts) and a C Linux guest driver (c/guest-linux, built to wasm32 for the
// emulator: `emulator.cGuest`, `devices: c-linux`). Its `control` (control.ts) gives the
// lines of its drivers' control interfaces (PROTOCOL.md, "Control interfaces") and its
// Windows control tool (c/tool/blockq-ctl.c), through which a real lab's host side
// reaches the VSP: a real lab plans and runs its VM jobs with a Linux guest (never run on
// a real Hyper-V host). Both sides of each handle a host's rescind and a guest's close
// (PROTOCOL.md "Rescind and guest close"), so its scenarios may rescind, fail a restore
// and close a channel from the guest (not FORCE_NEW_CHANNEL: its VSP's open has none).

import type { DeviceModule, GuestDriver, HostVsp } from '../../src/device-api/device-module.ts';
import { BlockqCHostVsp } from './c/host-vsp.ts';
import { BlockqCVsp } from './c/vsp.ts';
import { keyBlockqCVsp } from './c/vsp-key.ts';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, statusFor, statusHex } from './protocol.ts';
import { BlockqVsp } from './vsp.ts';
import { BlockqGuest, newBlockqState, reviveBlockq, snapshotBlockq, type BlockqGuestState } from './guest.ts';
import { blockqControl } from './control.ts';
import { blockqGuestLinuxRecipe } from './c/recipe.ts';
import { cLinuxGuest } from '../../src/device-api/c-linux-guest.ts';
import { InputError } from '../../src/errors.ts';

export { command } from './control.ts';

const blockq: DeviceModule = {
  name: 'blockq',
  messageSize: { min: HEADER_SIZE, max: MAX_MESSAGE_SIZE },
  completions: { guestSend: true, hostSend: true },
  statusRule: (tx, intact) => statusHex(statusFor(tx, intact)),
  control: blockqControl,
  emulator: {
    hostVsp: (o): HostVsp => new BlockqVsp(o),
    newGuestState: (channels, firstTx) => newBlockqState(channels, firstTx),
    guest: (state, rings, sink, host): GuestDriver => new BlockqGuest(state as BlockqGuestState, rings, sink, host),
    snapshotGuest: (state, now) => snapshotBlockq(state as BlockqGuestState, now),
    reviveGuest: (image, now) => reviveBlockq(image, now),
    cHost(hostName, o): HostVsp {
      // Its VSP's `open` has no force-new-channel (PROTOCOL.md): the C run would offer a
      // plain channel and restore it, where the twin offers it anew. Said, not run.
      if (o.forceNewChannel) throw new InputError(`channel ${o.ch} sets forceNewChannel, and blockq's C VSP has no FORCE_NEW_CHANNEL offer; run it with devices: twin`, { field: 'channels' });
      // One C VSP driver per host name, outliving the VM's host objects (c/host-vsp.ts).
      let driver = o.drivers.get(hostName) as BlockqCVsp | undefined;
      if (!driver) o.drivers.set(hostName, (driver = new BlockqCVsp({ choices: o.choices, sink: o.sink, now: o.now, platformFaults: o.faults, ...(o.replace ? { replace: o.replace } : {}) })));
      return new BlockqCHostVsp(driver, o.ch, o.h2gPages, o.quota ?? 0, o.faults);
    },
    keyDriver: (k, driver) => keyBlockqCVsp(k, driver as BlockqCVsp),
    cGuest(os, o) {
      // The C Linux guest driver (c/guest-linux) as the VM's guest, driven in blockq's control language.
      if (os !== 'linux') throw new InputError('c-windows: blockq has no C Windows guest driver; use c-linux', { field: 'devices' });
      return cLinuxGuest({ now: o.now, recipe: blockqGuestLinuxRecipe(), control: blockqControl, replace: o.replace });
    },
  },
};

export default blockq;
