// One channel of the C VSP on an emulated host, with the face the scenario executor
// gives a host VSP (the twin's: devices/sample/vsp.ts), so `devices: c` runs a scenario on
// the C driver. Everything goes through the VSP's own control interface, as a lab job
// uses it: the commands `open`, `transact`, `notify`, `save`, `detach`, `discard`,
// `restore`, `resume`, `rescind`, each line made by the sample's DeviceControl
// (devices/sample/control.ts: `command` for traffic, `channel` for channel operations,
// `channelInstance` for the instance GUID), the one function a real lab job's line comes
// from too, and the two IOCTLs that carry a channel's saved state out of the VSP and
// into another (IOCTL_SAMPLE_VSP_EXPORT / _IMPORT, lab/drivers/common/sample-control.h).
//
// One C VSP driver serves every channel of a host and lives as long as the host does,
// as a VSP driver outlives a VM's save on a real host. At a VM save the VSP saves
// (`save`), its saved state is exported into the VM's saved state, and the channel
// object is given up (`detach`). A restore, on this host or another (a migration), or
// from a checkpoint, imports that state and makes a new object from it (`restore`).
// A VM discarded unsaved (a checkpoint applied over it) is `discard`: nothing traced.
// A checkpoint the VM runs on from (runningCheckpoint save-and-continue) is `save`, then
// `resume`: VmbChannelStart on the same object.
//
// A rescind (lab/drivers/PROTOCOL.md, "Rescind and re-offer") is `rescind ch=N`, and the
// new instance's offer `open` again (the VSP keeps the channel's tx numbering). A channel
// that sets FORCE_NEW_CHANNEL is opened with `force-new-channel`, and at a restore its
// saved state is imported (for the numbering) but not restored: the bench rescinds it
// and offers it anew. A guest's close is not a VSP command: the emulated partition
// closes the server channel (KMCL runs the VSP's Suspend and Closed callbacks), and
// after the guest's side KMCL hands back what the channel had outstanding, which the
// VSP ends as cancelled (vsp-channel.c, VspEvtChannelClosed).

import type { Channel } from '../../../src/vmbus/channel.ts';
import type { Faults } from '../../../src/vmbus/faults.ts';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';
import { DeviceError } from '../../../src/device-api/device-module.ts';
import type { CVsp } from './vsp.ts';
import { namingChannel, replayRunsTwins } from '../../../src/devices/wasm/violations.ts';
import { ntStatusHex } from '../../../src/vmbus/status.ts';
import type { PacketRec } from '../../../src/devices/wasm/kmcl-shim.ts';
import type { StateKey } from '../../../src/scenario/state-key.ts';
import { keyTxContext } from './vsp-key.ts';
import { sampleControl } from '../control.ts';
import type { ChannelOp } from '../../../src/device-api/device-module.ts';

export class CHostVsp {
  private readonly vsp: CVsp;
  readonly ch: number;
  private readonly ringPages: number;
  private readonly quota: number;
  private readonly faults: Faults;
  /** the last channel object, for what asks about it while the VM is saved (nothing pending) */
  private detached: Channel | null = null;
  private heldAt = -1;
  private held = 0;
  /** restored from a saved state and not offered yet: enable() offers it */
  private restored = false;
  /** the channel sets FORCE_NEW_CHANNEL: `open ... force-new-channel`, never restored */
  private readonly forceNewChannel: boolean;
  /** the next restore's callback refuses from the second packet on (a `restore` with `fail`) */
  private refuseNextRestore = false;

  constructor(vsp: CVsp, ch: number, ringPages: number, quota: number, faults: Faults, forceNewChannel = false) {
    this.vsp = vsp;
    this.ch = ch;
    this.ringPages = ringPages;
    this.quota = quota;
    this.faults = faults;
    this.forceNewChannel = forceNewChannel;
  }

  get channel(): Channel {
    const c = this.vsp.offered(this.ch) ?? this.detached;
    if (!c) throw new Error(`C VSP: channel ${this.ch} is not offered`);
    return c;
  }

  /**
   * The host serves the channel: `resume ch=N` offers and starts a restored object;
   * the first time, `open` offers the channel (the C VSP enables and starts at once).
   */
  enable(): void {
    namingChannel(this.ch, () => {
      if (this.restored) {
        this.restored = false;
        this.vsp.run(this.line('resume'));
      } else if (!this.vsp.offered(this.ch)) {
        this.vsp.run(sampleControl.channel({ op: 'open', ch: this.ch, instance: instanceGuid(this.ch), ringPages: this.ringPages, loopback: true, forceNewChannel: this.forceNewChannel }));
      }
      this.configure();
    });
  }

  /**
   * What the bench applies to each new channel object: the fault injection, and the
   * scenario's transaction quota. The C VSP sets no quota; it is KMCL configuration the
   * bench applies, as the twin's host does (a listed difference).
   */
  private configure(): void {
    const c = this.vsp.offered(this.ch)!;
    c.faults = this.faults;
    if (this.quota) c.setTransactionQuota(this.quota);
  }

  send(kind: 'transaction' | 'notify', firstTx: number, count: number, size: number, guestHold: number): void {
    namingChannel(this.ch, () => {
      const next = (this.vsp.counters().find((c) => c.ch === this.ch)?.next_tx ?? 0) + 1;
      if (next !== firstTx) throw new Error(`C VSP channel ${this.ch}: the bench numbers the next transaction ${firstTx}, the VSP ${next}`);
      this.vsp.run(sampleControl.command(kind === 'transaction'
        ? { op: 'host-send', channel: this.ch, count, size, hold: guestHold }
        : { op: 'notify', dir: 'h2g', channel: this.ch, count, size }).line);
    });
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
    return namingChannel(this.ch, () => {
      return this.vsp.runTimers(now) > 0;
    });
  }

  /** `resume ch=N`: VmbChannelStart on the channel object the save paused (a checkpoint the VM runs on after). */
  resume(): void {
    namingChannel(this.ch, () => this.vsp.run(this.line('resume')));
  }

  /**
   * `save ch=N`, then the VSP's export of its saved state: the one buffer the VM's saved
   * state keeps for this channel (the VSP's record, KMCL's stream inside it).
   */
  save(): Uint8Array[] {
    return namingChannel(this.ch, () => {
      this.vsp.run(this.line('save'));
      return [this.vsp.exportState(this.ch)];
    });
  }

  /**
   * The VSP imports the saved state (IOCTL_SAMPLE_VSP_IMPORT) and `restore ch=N` makes a
   * new channel object from it, not yet offered: the executor restores every channel,
   * then enables every one, as the C VSP's `restore` and `resume` split it. What the VSP
   * refuses is a bad saved VM (a RestoreError, with the VM as it was).
   */
  restore(buffers: readonly Uint8Array[]): void {
    namingChannel(this.ch, () => {
      if (buffers.length !== 1) throw new RestoreError('bad-record', `VSP channel ${this.ch}: the C VSP saves one buffer per channel; the saved VM holds ${buffers.length}`);
      const st = this.vsp.importState(buffers[0]!);
      if (st !== 0) throw new RestoreError('bad-record', `VSP channel ${this.ch}: the C VSP refused the saved state: status ${ntStatusHex(st)}`);
      // FORCE_NEW_CHANNEL: the saved state is abandoned unread; the channel is offered anew.
      if (this.forceNewChannel) throw new DeviceError(`VSP channel ${this.ch}: FORCE_NEW_CHANNEL: not restored, offered anew`);
      const instance = instanceGuid(this.ch);
      if (this.refuseNextRestore) this.vsp.kmcl.restoreRefusals.set(instance, 2);
      let rs: number;
      try {
        rs = this.vsp.command(this.line('restore'));
      } finally {
        this.refuseNextRestore = false;
        this.vsp.kmcl.restoreRefusals.delete(instance);
      }
      // The VSP or KMCL refused the stream: the channel falls back to a rescind and a new
      // offer (a DeviceError), as with the twins; the VSP holds what it restored for it.
      if (rs !== 0) throw new DeviceError(`VSP channel ${this.ch}: restore ch=${this.ch} failed: status ${ntStatusHex(rs)}`);
      this.restored = true;
    });
  }

  /** A scenario's `restore` with `fail`: KMCL refuses this channel's second saved packet and after. */
  refuseRestoreFromSecondPacket(): void {
    this.refuseNextRestore = true;
  }

  /**
   * `rescind ch=N` (HostVsp.rescind): the C VSP disables and cleans up the channel object,
   * tracing pkt.cancel for what KMCL cancels and for what a failed restore left it. The
   * executor then makes a new CHostVsp, whose enable() offers the new instance (`open`).
   */
  rescind(): void {
    namingChannel(this.ch, () => {
      this.vsp.run(this.line('rescind'));
      this.restored = false;
      this.detached = null;
    });
  }

  /**
   * The guest closed the channel (HostVsp.guestClosed): the partition's close of the
   * server channel, Channel.peerClosed; KMCL runs the C VSP's Suspend and Closed callbacks.
   */
  guestClosed(): void {
    namingChannel(this.ch, () => this.channel.peerClosed());
  }

  /**
   * After the guest's side of its close (HostVsp.retireClosed): KMCL hands back what the
   * channel had outstanding (Channel.retireOutstanding, the emulator's inference [I]); the
   * C VSP's completion routine ends each HostTransaction as cancelled, having been told of
   * the guest's close by its Closed callback.
   */
  retireClosed(): void {
    namingChannel(this.ch, () => this.channel.retireOutstanding());
  }

  /**
   * The host objects go: after a save, `detach ch=N` (VmbChannelDisable +
   * VmbChannelCleanup; the saved state stays); with the VM discarded unsaved,
   * `discard ch=N` (the same calls, nothing of that VM traced).
   */
  teardown(opts: { discard: boolean }): void {
    namingChannel(this.ch, () => {
      this.detached = this.channel;
      this.vsp.run(this.line(opts.discard ? 'discard' : 'detach'));
    });
  }

  /** A channel operation on this channel as the sample's control makes its line (DeviceControl.channel). */
  private line(op: Exclude<ChannelOp['op'], 'open'>): string {
    return sampleControl.channel({ op, ch: this.ch });
  }


  /**
   * For explore's state key: this object by the fields that decide anything (not the
   * driver, which the executor keys once per host through keyCVsp, vsp-key.ts) and the
   * channel object it serves. `heldAt` and `held` only cache the driver's counters.
   */
  keyers(add: (object: object, key: (k: StateKey) => void) => void): void {
    add(this, (k) => {
      k.num(this.ch);
      k.num(this.ringPages);
      k.num(this.quota);
      k.num(this.restored ? 1 : 0);
      k.num(this.forceNewChannel ? 1 : 0);
      k.num(this.refuseNextRestore ? 1 : 0);
      k.value(this.vsp.offered(this.ch) ?? this.detached);
    });
  }

  /** A packet's context (a PacketRec of the shim) by the transaction it stands for. */
  keyContext(k: StateKey, pointer: unknown): void {
    keyTxContext(k, this.vsp, pointer as PacketRec | null);
  }

  // Replay (bench check) runs the TypeScript twins, never the C driver.
  isHeld(): boolean {
    return replayRunsTwins();
  }

  completeHeld(): boolean {
    return replayRunsTwins();
  }

  peekDelivery(): null {
    return replayRunsTwins();
  }
}

/**
 * The instance GUID whose last 8 hex digits are the channel number (PROTOCOL.md "Channel
 * numbers"): the sample's control's, as a lab job offers the channel, so the emulated
 * guest binds the id a real one would.
 */
export function instanceGuid(ch: number): string {
  return sampleControl.channelInstance(ch);
}
