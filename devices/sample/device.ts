// The sample device as a device module (src/device-api/device-module.ts): the protocol of
// lab/drivers/PROTOCOL.md, its TypeScript twins (vsp.ts, guest.ts), its C VSP on the
// emulator (devices/sample/c) and its drivers' control interfaces on a real lab
// (control.ts). A scenario that names no device runs this one.

import type { DeviceModule, GuestDriver, HostVsp } from '../../src/device-api/device-module.ts';
import { sampleControl } from './control.ts';
import { CHostVsp } from './c/host-vsp.ts';
import { CVsp } from './c/vsp.ts';
import { keyCVsp } from './c/vsp-key.ts';
import { cLinuxGuest } from '../../src/device-api/c-linux-guest.ts';
import { guestLinuxRecipe } from './c/recipes.ts';
import { cWindowsGuest } from './c/guest-windows-vm.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, statusFor, statusHex } from './protocol.ts';
import { SampleVsp } from './vsp.ts';
import { SampleGuest, newGuestState, reviveGuest, snapshotGuest, type GuestState } from './guest.ts';

const sample: DeviceModule = {
  name: 'sample',
  messageSize: { min: HEADER_SIZE, max: MAX_MESSAGE_SIZE },
  completions: { guestSend: true, hostSend: true },
  statusRule: (tx, intact) => statusHex(statusFor(tx, intact)),
  control: sampleControl,
  emulator: {
    hostVsp: (o): HostVsp => new SampleVsp(o),
    newGuestState: (channels, firstTx) => newGuestState(channels, firstTx),
    guest: (state, rings, sink, host): GuestDriver => new SampleGuest(state as GuestState, rings, sink, host),
    snapshotGuest: (state, now) => snapshotGuest(state as GuestState, now),
    reviveGuest: (image, now) => reviveGuest(image, now),
    cHost(hostName, o): HostVsp {
      // One C VSP driver per host name, outliving the VM's host objects (devices/sample/c/host-vsp.ts).
      let driver = o.drivers.get(hostName) as CVsp | undefined;
      if (!driver) o.drivers.set(hostName, (driver = new CVsp({ choices: o.choices, sink: o.sink, now: o.now, platformFaults: o.faults, ...(o.replace ? { replace: o.replace } : {}) })));
      return new CHostVsp(driver, o.ch, o.h2gPages, o.quota ?? 0, o.faults, o.forceNewChannel);
    },
    keyDriver: (k, driver) => keyCVsp(k, driver as CVsp),
    cGuest(os, o) {
      // The C guest driver as the VM's guest: the Windows KMCL client (devices/sample/c/guest-windows-vm.ts)
      // or the Linux module (src/device-api/c-linux-guest.ts), driven in the drivers' control language.
      if (os === 'windows') return cWindowsGuest({ now: o.now, choices: o.choices ?? DEFAULT_CHOICES, control: sampleControl, replace: o.replace, kmclFaults: o.kmclFaults, removalRace: o.removalRace });
      return cLinuxGuest({ now: o.now, recipe: guestLinuxRecipe(), control: sampleControl, replace: o.replace });
    },
  },
};

export default sample;
