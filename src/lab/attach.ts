// Attach modes: how the sample VSP reaches the peer of its channels (DESIGN.md "The sample
// devices"; lab/drivers/README.md "The VMBus handle"). A job is always one mode, never a mix.
//
//   loopback   the VSP offers its channels with VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER;
//              the peer is the Windows KMCL client driver loaded in the host itself, on the
//              offer's device interface. No VM. Scenario steps become channel-level
//              operations through the VSP's control commands (save, restore, resume).
//   vm-handle  the VSP attaches each channel to a VM through that VM's VMBus handle, which a
//              lab-named handle broker on the host supplies; the guest driver runs in the VM
//              and every VM-level operation (Save-VM, Move-VM, checkpoints) applies.
//
// What a loopback job can do with each scenario step is decided here, once, so that the
// plan (not-applicable jobs), the real side (the VSP commands it sends) and the docs agree.

import type { Scenario, Step } from '../scenario/model.ts';

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
  | { kind: 'save' } // VSP `save ch=N` on every channel: pause and save into memory
  | { kind: 'restore' } // VSP `restore ch=N` + `resume ch=N`: a new server channel from the save
  | { kind: 'save-restore' } // both at once: what Hyper-V does to take a checkpoint of a running VM
  | { kind: 'not-applicable'; reason: string };

/**
 * Invariant: a step is either mapped to a channel-level operation whose trace is the one
 * the emulator gives for the same step (so the checker needs no second model), or it is
 * not applicable, and then the whole job is planned as skipped with the reason.
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
      return { kind: 'save-restore' };
    case 'pause': case 'resume':
      // The VSP's only way to pause a channel (`save ch=N`) also saves it, which writes
      // pkt.save events a pause does not have; a pause-only command would be needed.
      return { kind: 'not-applicable', reason: `"${step.op}" pauses the whole VM; at channel level the sample VSP can pause a channel only by saving it, which is another operation` };
    case 'apply-checkpoint':
      return { kind: 'not-applicable', reason: '"apply-checkpoint" rolls a VM back; a loopback channel has no VM' };
    case 'migrate':
      return { kind: 'not-applicable', reason: '"migrate" moves a VM between hosts; a loopback channel has no VM' };
    case 'rescind':
      // The VSP's `close ch=N` then `open` would be one, but the loopback client's rescind
      // handling and its trace are not written yet (issue 13 item 3, emulator only).
      return { kind: 'not-applicable', reason: '"rescind" needs the client to handle a rescind and re-offer, which the loopback job does not drive yet' };
  }
}

/** Why a scenario cannot run as a loopback job (its first inapplicable step), or undefined. */
export function loopbackNotApplicable(s: Scenario): string | undefined {
  for (let i = 0; i < s.steps.length; i++) {
    const op = loopbackOp(s.steps[i]!);
    if (op.kind === 'not-applicable') return `loopback: step ${i + 1} ${op.reason}`;
  }
  return undefined;
}

/** What each mode can and cannot test, for the README, the plan and the probe. */
export const ATTACH_SCOPE: Readonly<Record<AttachMode, { can: string; cannot: string }>> = {
  loopback: {
    can: 'the VSP and the real vmbkmcl.sys with the Windows client driver in the host: traffic both ways, channel save, restore onto a new server channel, in-flight packets through SavePacket/RestorePacket',
    cannot: 'anything of a VM: Save-VM, pause, checkpoint apply, live migration, the Linux guest driver',
  },
  'vm-handle': {
    can: 'the VSP attached to a real VM, the guest driver in it, and every VM-level operation (Save-VM, Suspend-VM, checkpoints, Move-VM)',
    cannot: 'nothing more than a VM can, but it needs a handle broker, and no public way to get a VM\'s VMBus handle is known',
  },
};
