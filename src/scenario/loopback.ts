// What a scenario can do in the loopback topology (execute.ts, "Topology loopback"): the
// one rule that both the emulator (which refuses the rest) and a lab's plan (which plans
// the rest as not applicable, src/lab/attach.ts) go by, so the two never disagree.
//
// A loopback job has no VM: migration and checkpoint apply have no channel-level form.
// Its pause and save act on the server channels, and a paused or saved channel takes no
// new HostTransaction or Notify from the VSP (the sample VSP's `transact` and `notify`
// fail there), so a step that sends from the host in that window cannot run. The client
// is another matter: it is never paused, and its sends wait in its ring.

import type { Scenario, Step } from './model.ts';

export interface LoopbackProblem {
  /** index into scenario.steps */
  step: number;
  reason: string;
}

/**
 * The first step a loopback topology cannot run, or undefined.
 * Invariant: undefined exactly when executeScenario with topology loopback accepts the
 * scenario (it calls this), so a job planned for loopback never fails on its steps.
 */
export function loopbackStepProblem(s: Pick<Scenario, 'steps'>): LoopbackProblem | undefined {
  let held: 'paused' | 'saved' | null = null;
  for (let i = 0; i < s.steps.length; i++) {
    const st: Step = s.steps[i]!;
    switch (st.op) {
      case 'migrate':
        return { step: i, reason: '"migrate" moves a VM between hosts; a loopback channel has no VM' };
      case 'apply-checkpoint':
        return { step: i, reason: '"apply-checkpoint" rolls a VM back; a loopback channel has no VM' };
      case 'rescind':
      case 'guest-open':
      case 'guest-close':
        // The VSP has `rescind ch=N` and a new `open`, and the host's PnP could disable and
        // enable the client's device (as a Windows VM guest's: src/lab/vm-steps.ts), but the
        // sample's client keeps its trace in that device's memory and frees it with the
        // channel (guest-driver.c EvtDeviceReleaseHardware): the close's own events would
        // be lost. Nor does this topology model a client's rescind or close.
        return { step: i, reason: `"${st.op}" would remove or disable the client's device, and with it the client's trace (the sample's keeps it in the device); a loopback job does not drive it` };
      case 'host-send':
      case 'notify':
        if (held && (st.op === 'host-send' || st.dir === 'h2g')) {
          return { step: i, reason: `"${st.op}" sends from the host while the channels are ${held}; at channel level the VSP cannot send on a ${held} channel (a VM's host can, into a frozen guest's ring)` };
        }
        break;
      case 'pause':
        held = held ?? 'paused';
        break;
      case 'save':
        held = 'saved';
        break;
      case 'restore':
        if (st.fail) return { step: i, reason: '"restore" with "fail" makes a VSP refuse its saved state, which the sample VSP cannot be told to do' };
        held = null;
        break;
      case 'resume':
        held = null;
        break;
      default:
        break;
    }
  }
  return undefined;
}
