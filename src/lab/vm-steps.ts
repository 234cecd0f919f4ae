// What a VM job (attach vm-handle) on a real lab can do with a scenario's channel-level
// steps, by the device's control (src/device-api/device-module.ts DeviceControl) and the
// guest's OS. Decided once, at plan time: a job that cannot run is planned not applicable
// with the reason (so it shows, skipped, in the plan, the matrix and JUnit), before any
// host is contacted; real-job.ts drives the rest (its doStep: rescind, guest-close,
// guest-open).
//
//   rescind      the VSP's `rescind ch=N`, then its new instance offered (`open`, through
//                the lab's handle broker); a Linux guest's vmbus core removes the device at
//                the rescind and probes the new one by itself. A Windows guest's PnP does
//                the same, but a driver must keep its trace across it (guestUnbind.windowsPnp).
//   reopen false the guest must not bind the new instance until `guest-open`: Linux's bus
//                stops binding new devices (drivers_autoprobe 0) until the bind; Windows has
//                no such switch for a device not yet there, so it cannot.
//   guest-close  the guest OS unbinds the device from its driver (Linux sysfs unbind; Windows
//   guest-open   Disable-PnpDevice) and binds it again (bind; Enable-PnpDevice).
//
// A Windows guest driver that serves fewer channels than the scenario has (the device
// control's windowsGuestChannels, when it says; 0: the device has none) cannot run it either. Nor can a Windows
// guest whose every channel is closed at once (guest-close): a KMDF driver's control
// device, through which the bench reads it, goes with its last PnP device (KMDF's
// ControlDeviceDeleted rule), so nothing could read its counters or trace until a
// channel opens again.
//
// Not drivable at all on a real lab: a `restore` with `fail` (a real VSP cannot be told to
// refuse its saved state) and a channel with forceNewChannel (the handle broker's offer has
// no flag for it: lab/SETUP.md "Handle broker").

import { devicePath, type Scenario } from '../scenario/model.ts';
import { deviceOf } from '../device-api/load.ts';

/**
 * Why a VM job with a guest of `os` cannot run scenario `s` on a real lab, naming the
 * step and the device, or undefined. The scenario's device module must be loaded
 * (loadScenarioPaths does it).
 * Invariant: undefined only if every step of `s` is one real-job.ts's doStep drives for
 * this device and OS (test/lab/vm-steps.test.ts: a fast-check property runs the
 * scenarios it accepts through real-job; c-vm-rescind.test.ts runs them on the C drivers).
 */
export function vmStepNotApplicable(s: Scenario, os: 'linux' | 'windows'): string | undefined {
  const d = deviceOf(devicePath(s));
  if (os === 'windows' && d.control?.windowsGuestChannels === 0) return `the ${d.name} device has no Windows guest driver (its control's windowsGuestChannels is 0)`;
  const unbind = d.control?.guestUnbind;
  const can = os === 'linux' ? unbind?.linuxDriver !== undefined : unbind?.windowsPnp === true;
  const how = os === 'linux' ? 'control.guestUnbind.linuxDriver, the driver\'s name under /sys/bus/vmbus/drivers' : 'control.guestUnbind.windowsPnp: its Windows driver\'s trace outlives a disabled or removed device';
  const forced = s.channels.find((c) => c.forceNewChannel);
  const closed = new Set<number>();
  if (forced) return `channel ${forced.id} sets forceNewChannel, which the handle broker's offer cannot ask for on a real lab`;
  for (let i = 0; i < s.steps.length; i++) {
    const st = s.steps[i]!;
    const at = `step ${i + 1} "${st.op}"`;
    switch (st.op) {
      case 'restore':
        if (st.fail) return `${at} with "fail" makes a VSP refuse its saved state, which a real VSP cannot be told to do`;
        break;
      case 'rescind':
        if (!st.reopen && os === 'windows') return `${at} with reopen: false: a Windows guest has no way to keep the new instance's device from starting before "guest-open"`;
        if (os === 'windows' && !can) return `${at}: a Windows guest's PnP removes the device and starts the new one, and the ${d.name} device does not say its driver's trace survives that (${how})`;
        if (!st.reopen && !can) return `${at} with reopen: false needs the guest to bind the new instance later, and the ${d.name} device names no way to (${how})`;
        break;
      case 'guest-close':
      case 'guest-open':
        if (!can) return `${at}: the ${d.name} device names no way for a ${os} guest to close and reopen its channel (${how})`;
        if (st.op === 'guest-close') closed.add(st.channel);
        else closed.delete(st.channel);
        if (os === 'windows' && closed.size === s.channels.length) return `${at} closes the last open channel: a Windows guest driver's control device goes with its last device, so the bench could not read the driver until a channel opens again`;
        break;
      default:
        break;
    }
  }
  const max = os === 'windows' ? d.control?.windowsGuestChannels : undefined;
  if (max !== undefined && s.channels.length > max) return `${s.channels.length} channels: the ${d.name} device's Windows guest driver serves ${max} in one VM (its control's windowsGuestChannels)`;
  return undefined;
}
