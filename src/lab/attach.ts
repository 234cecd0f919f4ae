// Attach modes: how the sample VSP reaches the peer of its channels (DESIGN.md "The sample
// devices"; lab/drivers/README.md "The VMBus handle"). A job is always one mode, never a mix.
//
//   loopback   the VSP offers its channels with VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER;
//              the peer is the Windows KMCL client driver loaded in the host itself, on the
//              offer's device interface. No VM. Scenario steps become channel-level
//              operations through the VSP's control commands (save, restore, pause, resume).
//   vm-handle  the VSP attaches each channel to a VM through that VM's VMBus handle, which a
//              lab-named handle broker on the host supplies; the guest driver runs in the VM
//              and every VM-level operation (Save-VM, Move-VM, checkpoints) applies.
//
// What a loopback job can do with each scenario step is decided here, once, so that the
// plan (not-applicable jobs), the real side (the VSP commands it sends) and the docs agree.

import { loopbackStepProblem } from '../scenario/loopback.ts';
import { devicePath, type Scenario, type Step } from '../scenario/model.ts';
import { deviceOf } from '../device-api/load.ts';

export const ATTACH_MODES = ['loopback', 'vm-handle'] as const;
export type AttachMode = (typeof ATTACH_MODES)[number];

/**
 * The lab's handle broker: a command run on the host that holds a VM's VMBus handle and,
 * from its own process (the handle is only valid there), asks the VSP to offer one channel
 * into that VM. Contract (lab/SETUP.md "Handle broker"):
 *
 *   COMMAND [ARGS...] -VmId <guid> -Channel <n> -InstanceId <guid> -RingPages <p>
 *
 * exit 0: the channel is offered into the VM (the VSP accepted `open N GUID handle=H`);
 * exit 3: no handle could be had (stderr says why); anything else: a broken broker.
 */
export interface HandleBroker {
  command: string;
  args: string[];
}

/** The channel-level operation a loopback job does for a scenario step. */
export type LoopbackOp =
  | { kind: 'traffic' } // sends, notifies, runs, settles: the same as in a VM
  | { kind: 'save' } // VSP `save ch=N` + `detach ch=N` on every channel: pause, save into memory, give up the server object
  | { kind: 'restore' } // VSP `restore ch=N`, then `resume ch=N`: a new server channel from the save, offered and started, the client still open
  | { kind: 'save-continue' } // VSP `save ch=N` + `resume ch=N`: save, and go on on the same server channel
  | { kind: 'pause' } // VSP `pause ch=N` on every channel: the server pauses, the client runs on
  | { kind: 'resume' } // VSP `resume ch=N` on every channel
  | { kind: 'not-applicable'; reason: string };

/**
 * Invariant: a step is either mapped to a channel-level operation whose trace is the one
 * the emulator's loopback topology gives for the same step (execute.ts, "Topology
 * loopback"), or it is not applicable, and then the whole job is planned as skipped with
 * the reason. Which steps a scenario cannot run is the emulator's own rule
 * (scenario/loopback.ts), so a planned loopback job is always one the emulator runs.
 */
export function loopbackOp(step: Step): LoopbackOp {
  switch (step.op) {
    case 'guest-send': case 'host-send': case 'notify': case 'run': case 'settle':
      return { kind: 'traffic' };
    case 'save':
      return { kind: 'save' };
    case 'restore':
      return { kind: 'restore' };
    case 'checkpoint':
      return { kind: 'save-continue' };
    case 'pause':
      return { kind: 'pause' };
    case 'resume':
      return { kind: 'resume' };
    case 'apply-checkpoint': case 'migrate': case 'rescind': case 'guest-open': case 'guest-close':
      return { kind: 'not-applicable', reason: loopbackStepProblem({ steps: [step] })!.reason };
  }
}

/**
 * Why a scenario cannot run as a loopback job, or undefined: its first step the topology
 * cannot run, or more channels than its device's loopback client serves (the module's
 * `control.loopbackChannels`; the sample's serves one). The scenario's device module
 * must be loaded (loadScenarioPaths does it).
 */
export function loopbackNotApplicable(s: Scenario): string | undefined {
  const p = loopbackStepProblem(s);
  if (p) return `loopback: step ${p.step + 1} ${p.reason}`;
  // The emulator's loopback topology refuses it too (execute.ts refuseVmOnlySteps).
  if (s.channels.some((c) => c.forceNewChannel)) return 'loopback: forceNewChannel: its restore falls back to a rescind and re-offer, which a loopback job does not drive';
  const d = deviceOf(devicePath(s));
  const max = d.control?.loopbackChannels;
  if (max === 0) return `loopback: the ${d.name} device has no loopback client (its module's control.loopbackChannels is 0)`;
  if (max !== undefined && s.channels.length > max) return `loopback: ${s.channels.length} channels; the ${d.name} device's loopback client serves ${max} (its module's control.loopbackChannels)`;
  return undefined;
}

/** What each mode can and cannot test, for the README, the plan and the probe. */
export const ATTACH_SCOPE: Readonly<Record<AttachMode, { can: string; cannot: string }>> = {
  loopback: {
    can: 'the VSP and the real vmbkmcl.sys with the Windows client driver in the host: traffic both ways, channel save, restore onto a new server channel with the client open, channel pause and resume, in-flight packets through SavePacket/RestorePacket',
    cannot: 'anything of a VM: Save-VM, Suspend-VM, checkpoint apply, live migration, a host sending into a paused guest, the Linux guest driver; a rescind or a guest close (the sample client\'s trace goes with its device); more channels than the device\'s client serves (the sample\'s: one)',
  },
  'vm-handle': {
    can: 'the VSP attached to a real VM, the guest driver in it, and every VM-level operation (Save-VM, Suspend-VM, checkpoints, Move-VM)',
    cannot: 'nothing more than a VM can, but it needs a handle broker, and no public way to get a VM\'s VMBus handle is known',
  },
};
