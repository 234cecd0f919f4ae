// The sample device as a device module (src/device-api/device-module.ts): the protocol of
// lab/drivers/PROTOCOL.md, its TypeScript twins (vsp.ts, guest.ts), its C VSP on the
// emulator (src/devices/wasm) and the command language of its drivers' control
// interfaces on a real lab. A scenario that names no device runs this one.

import type { DeviceModule, GuestDriver, HostVsp, TrafficStep } from '../../src/device-api/device-module.ts';
import { CHostVsp } from './c/host-vsp.ts';
import { CVsp } from './c/vsp.ts';
import { cLinuxGuest } from './c/guest-vm.ts';
import { InputError } from '../../src/errors.ts';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, statusFor, statusHex } from './protocol.ts';
import { SampleVsp } from './vsp.ts';
import { SampleGuest, newGuestState, reviveGuest, snapshotGuest, type GuestState } from './guest.ts';

/** The guest driver's completion modes as its `send` command numbers them (PROTOCOL.md). */
const MODE = { inline: 0, deferred: 1, hold: 2 } as const;

/** A traffic step as a line of the drivers' control language (lab/drivers/README.md). */
function command(step: TrafficStep): { to: 'vsp' | 'guest'; line: string } {
  switch (step.op) {
    case 'guest-send':
      return { to: 'guest', line: `send ${step.count} ${step.size} ${MODE[step.mode]} ${step.mode === 'hold' ? step.hold : 0} ch=${step.channel}` };
    case 'host-send':
      return { to: 'vsp', line: `transact ${step.count} ${step.size} ${step.hold} ch=${step.channel}` };
    case 'notify':
      return { to: step.dir === 'g2h' ? 'guest' : 'vsp', line: `notify ${step.count} ${step.size} ch=${step.channel}` };
  }
}

const sample: DeviceModule = {
  name: 'sample',
  messageSize: { min: HEADER_SIZE, max: MAX_MESSAGE_SIZE },
  completions: { guestSend: true, hostSend: true },
  statusRule: (tx, intact) => statusHex(statusFor(tx, intact)),
  control: { command },
  emulator: {
    hostVsp(o): HostVsp {
      const v = new SampleVsp(o);
      v.channel.faults = o.faults;
      if (o.firstTransId !== undefined) v.channel.nextTransId = o.firstTransId;
      return v;
    },
    newGuestState: (channels, firstTx) => newGuestState(channels, firstTx),
    guest: (state, rings, sink, host): GuestDriver => new SampleGuest(state as GuestState, rings, sink, host),
    snapshotGuest: (state, now) => snapshotGuest(state as GuestState, now),
    reviveGuest: (image, now) => reviveGuest(image, now),
    cHost(hostName, o): HostVsp {
      // One C VSP driver per host name, outliving the VM's host objects (devices/sample/c/host-vsp.ts).
      let driver = o.drivers.get(hostName) as CVsp | undefined;
      if (!driver) o.drivers.set(hostName, (driver = new CVsp({ choices: o.choices, sink: o.sink, now: o.now, ...(o.replace ? { replace: o.replace } : {}) })));
      return new CHostVsp(driver, o.ch, o.h2gPages, o.quota ?? 0, o.faults);
    },
    cGuest(os, o) {
      // The C guest driver as the VM's guest (devices/sample/c/guest-vm.ts), driven in the drivers' control language.
      if (os !== 'linux') throw new InputError('c-windows: the sample\'s C Windows guest driver does not run as an emulated VM\'s guest yet (its KMCL client channels are not saved with the VM); use c-linux', { field: 'devices' });
      return cLinuxGuest({ now: o.now, command, replace: o.replace });
    },
  },
};

export default sample;
