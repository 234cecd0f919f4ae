// A scenario's channel-level steps in a VM job on a real lab (src/lab/vm-steps.ts says
// which a device and guest OS can run; the plan skips the rest):
//
//   rescind      VSP `rescind ch=N` (DeviceControl.channel); the guest's OS removes the
//                device (waited for: absent); with reopen false, the guest OS is told to
//                leave new devices unbound; the new instance offered with the same
//                instance GUID (JobLab.offer: the VSP's `open`, through the handle broker
//                into the VM), as the emulator offers it; then waited for: bound by the
//                guest's own probe, or present and unbound (reopen false).
//   guest-close  the guest OS unbinds the device from its driver (waited for: unbound);
//                the driver's remove closes the channel, and the host's KMCL tells the VSP.
//   guest-open   the guest OS binds it again (waited for: bound): the driver's probe opens
//                the channel on new rings; new devices bind by themselves again.
//
// The host's `ch.rescind` and `ch.offer` are written by the job into the host's trace
// (host-inserts.ts), at the host's seq when it asked. The same GUID for the new instance:
// the sample VSP's `open` of a rescinded channel takes only its old GUID (vsp-channel.c,
// VspChannelReoffer), the emulator keeps it, and the trace's channel number is the
// GUID's last digits. That a Linux guest takes a new offer of the GUID it just released
// is inferred from its vmbus core (the old channel leaves its list once released, before
// the host may offer again), not seen on a host.

import type { DeviceControl } from '../../device-api/device-module.ts';
import { InputError } from '../../errors.ts';
import type { Scenario, Step } from '../../scenario/model.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import type { HostInserts } from './host-inserts.ts';
import type { GuestDevices, GuestDeviceState, JobLab } from './real-job.ts';

/** How often a wait for the guest's device asks again. */
const POLL_MS = 250;

export interface ChannelStepCtx {
  lab: JobLab;
  scenario: Scenario;
  control: DeviceControl;
  inserts: HostInserts;
  clock: Clock;
  signal: AbortSignal;
  /** Deadline of one wait for the guest; past it the job is a hang (made by `hang`). */
  timeoutMs: number;
  hang: (message: string) => Error;
  /** channels whose new instance the guest OS holds unbound (a rescind with reopen false) */
  held: Set<number>;
}

type ChannelStep = Extract<Step, { op: 'rescind' | 'guest-close' | 'guest-open' }>;

export async function doChannelStep(step: ChannelStep, c: ChannelStepCtx): Promise<void> {
  const ch = step.channel;
  const instance = c.control.channelInstance(ch);
  const devices = guestDevices(step, c);
  switch (step.op) {
    case 'rescind': {
      const spec = c.scenario.channels.find((x) => x.id === ch)!;
      if (!c.lab.offer) throw new InputError(`"rescind" of channel ${ch}: this lab cannot offer a channel's new instance`, { file: c.scenario.source?.file, field: 'steps' });
      c.inserts.add(await c.lab.vsp.traceSeq(), { ev: 'ch.rescind', ch });
      await c.lab.vsp.command(c.control.channel({ op: 'rescind', ch }));
      await waitFor(devices, instance, 'absent', `the guest to remove channel ${ch}'s device after the rescind`, c);
      if (!step.reopen) {
        await devices.autoBind(false);
        c.held.add(ch);
      }
      c.inserts.add(await c.lab.vsp.traceSeq(), { ev: 'ch.offer', ch });
      await c.lab.offer(spec);
      await waitFor(devices, instance, step.reopen ? 'bound' : 'unbound', `the guest to ${step.reopen ? 'open' : 'see'} channel ${ch}'s new instance`, c);
      return;
    }
    case 'guest-close':
      await devices.unbind(instance);
      await waitFor(devices, instance, 'unbound', `the guest to close channel ${ch}`, c);
      return;
    case 'guest-open':
      await devices.bind(instance);
      await waitFor(devices, instance, 'bound', `the guest to open channel ${ch}`, c);
      // The last held instance bound: the guest's OS binds new devices by itself again.
      if (c.held.delete(ch) && c.held.size === 0) await devices.autoBind(true);
      return;
  }
}

/** The guest's devices, or the refusal (a caller that did not plan the job: src/lab/vm-steps.ts). */
function guestDevices(step: ChannelStep, c: ChannelStepCtx): GuestDevices {
  const d = c.lab.guest.devices;
  if (!d) throw new InputError(`"${step.op}" of channel ${step.channel}: this job's guest cannot close, open or wait for a channel's device (the device's control has no guestUnbind for its OS)`, { file: c.scenario.source?.file, field: 'steps' });
  return d;
}

/** Polls the guest's device until it is in `want`; past the deadline, a hang. */
async function waitFor(d: GuestDevices, instance: string, want: GuestDeviceState, what: string, c: ChannelStepCtx): Promise<void> {
  const until = c.clock.now() + c.timeoutMs;
  for (;;) {
    const now = await d.state(instance);
    if (now === want) return;
    if (c.clock.now() >= until) throw c.hang(`waited ${Math.round(c.timeoutMs / 1000)} s for ${what}; its device is ${now}`);
    await c.clock.sleep(POLL_MS, c.signal);
  }
}
