// One channel of the C VSP on an emulated host, with the face the scenario executor
// gives a host VSP (the twin's: devices/sample/vsp.ts), so `devices: c` runs a scenario on
// the C driver. Everything goes through the VSP's own control commands, as a lab job
// sends them: `open`, `transact`, `notify`, `save`, `restore`.
//
// One C VSP driver serves every channel of a host and lives as long as the host does:
// a VM save and restore on the same host is the VSP's `save` and `restore` commands,
// as on a real host, where the VSP driver outlives the VM's save. What the C VSP
// cannot do is restore on another host or from an older save: it keeps one saved state
// per channel, in its own memory, and has no command to export or import one. So
// migrations and checkpoint-apply are refused for `devices: c` (the caller says so).
// At a VM save the VSP saves (`save`) and gives up the channel object (`detach`); the
// VM's restore makes a new one from the saved state (`restore`). A checkpoint the VM runs
// on from (runningCheckpoint save-and-continue) is `save`, then `resume`: VmbChannelStart
// on the same object.

import type { Channel } from '../../vmbus/channel.ts';
import type { Faults } from '../../vmbus/faults.ts';
import type { CVsp } from './c-vsp.ts';

export class CHostVsp {
  private readonly vsp: CVsp;
  readonly ch: number;
  private readonly faults: Faults;
  /** the last channel object, for what asks about it while the VM is saved (nothing pending) */
  private detached: Channel | null = null;
  private heldAt = -1;
  private held = 0;

  /** Offers the channel unless the driver already has it (the same host after a save). */
  constructor(vsp: CVsp, ch: number, ringPages: number, quota: number, faults: Faults) {
    this.vsp = vsp;
    this.ch = ch;
    this.faults = faults;
    // The VSP's counters list every channel it has, offered or detached.
    if (!vsp.counters().some((c) => c.ch === ch)) {
      vsp.run(`open ${ch} ${instanceGuid(ch)} loopback ring-pages=${ringPages}`);
      // The C VSP sets no transaction quota; a scenario's quota is KMCL configuration
      // the bench applies to the channel, as the twin's host does (a listed difference).
      if (quota) vsp.offered(ch)!.setTransactionQuota(quota);
    }
    if (vsp.offered(ch)) this.channel.faults = faults;
  }

  get channel(): Channel {
    const c = this.vsp.offered(this.ch) ?? this.detached;
    if (!c) throw new Error(`C VSP: channel ${this.ch} is not offered`);
    return c;
  }

  /** The offer was made when the channel was opened (the C VSP enables and starts at once). */
  enable(): void {}

  send(kind: 'transaction' | 'notify', firstTx: number, count: number, size: number, guestHold: number): void {
    const next = (this.vsp.counters().find((c) => c.ch === this.ch)?.next_tx ?? 0) + 1;
    if (next !== firstTx) throw new Error(`C VSP channel ${this.ch}: the bench numbers the next transaction ${firstTx}, the VSP ${next}`);
    this.vsp.run(kind === 'transaction' ? `transact ${count} ${size} ${guestHold} ch=${this.ch}` : `notify ${count} ${size} ch=${this.ch}`);
  }

  /** When the VSP's hold timer next fires, if it holds a request; else null. */
  nextDue(): number | null {
    // The counters are read again only after the driver has run since.
    if (this.heldAt !== this.vsp.rt.generation) {
      this.held = this.vsp.counters().find((c) => c.ch === this.ch)?.held ?? 0;
      this.heldAt = this.vsp.rt.generation;
    }
    return this.held > 0 ? this.vsp.nextTimerDue() : null;
  }

  completeDue(now: number): boolean {
    return this.vsp.runTimers(now) > 0;
  }

  /** `save ch=N`: the VSP pauses and saves into its own memory; KMCL's output, for the VM's saved state. */
  save(): Uint8Array[] {
    this.vsp.run(`save ch=${this.ch}`);
    return this.vsp.savedOutputs(this.ch);
  }

  /** `resume ch=N`: VmbChannelStart on the channel object the save paused (a checkpoint the VM runs on after). */
  resume(): void {
    this.vsp.run(`resume ch=${this.ch}`);
  }

  /** `restore ch=N`: a new channel object from the VSP's saved state (the buffers are KMCL's copy of it). */
  restore(_buffers: readonly Uint8Array[]): void {
    this.vsp.run(`restore ch=${this.ch}`);
    this.channel.faults = this.faults;
  }

  /**
   * The host objects go (after a save, or with the VM discarded): `detach ch=N`, the C VSP
   * disables and cleans up the channel object (VmbChannelDisable + VmbChannelCleanup) and
   * keeps the saved state for `restore`. The C VSP does the same either way, so `discard`
   * is not passed on.
   */
  teardown(_opts: { discard: boolean }): void {
    this.detached = this.channel;
    this.vsp.run(`detach ch=${this.ch}`);
  }

  isHeld(): boolean {
    throw new Error('replay (bench check) runs the TypeScript twins, not the C drivers');
  }

  completeHeld(): boolean {
    return this.isHeld();
  }

  peekDelivery(): null {
    return this.isHeld() ? null : null;
  }
}

/** The instance GUID whose last 8 hex digits are the channel number (lab/drivers/README.md). */
export function instanceGuid(ch: number): string {
  return `8d2f5c3a-71b4-4e0e-9a6d-2c1f${ch.toString(16).padStart(8, '0')}`;
}
