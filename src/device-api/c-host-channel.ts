// One channel of a device's C VSP on an emulated host, for any device, with the face the
// scenario executor gives a host VSP (CHostChannel, HostVsp), so `devices: c` runs a
// scenario on the C driver (CVspDriver, c-vsp-driver.ts). Beside server-channel.ts, which
// does the same for a TypeScript twin VSP; here because the HostVsp face is the device
// interface's, which src/devices/wasm, below it, cannot import. A device author's C VSP
// gets it by naming its control (DeviceControl's command, channel and channelInstance: the
// lines a lab job sends) and a few counters; the device folder keeps only what differs
// (devices/sample/c/host-vsp.ts, devices/blockq/c/host-vsp.ts).
//
// Everything goes through the VSP's control interface, as a lab job uses it: `open`, the
// control's `begin` lines to the VSP once the channels are open, the traffic commands, `save`, `detach`, `discard`, `restore`, `resume` and, for a VSP that
// has them, `rescind` and the `open ... force-new-channel` of a FORCE_NEW_CHANNEL channel.
//
// One C VSP driver serves every channel of a host and lives as long as the host does, as a
// VSP driver outlives a VM's save on a real host. At a VM save the VSP saves (`save`), its
// saved state is exported into the VM's saved state, and the channel object is given up
// (`detach`). A restore, on this host or another (a migration), or from a checkpoint,
// imports that state and makes a new object from it (`restore`), offered when the executor
// enables the channel (`resume`). A VM discarded unsaved (a checkpoint applied over it) is
// `discard`: nothing traced. A checkpoint the VM runs on from (runningCheckpoint
// save-and-continue) is `save`, then `resume`: VmbChannelStart on the same object.

import type { Channel } from '../vmbus/channel.ts';
import type { Faults } from '../vmbus/faults.ts';
import { InputError } from '../errors.ts';
import { RestoreError } from '../vmbus/saved-state.ts';
import { ntStatusHex } from '../vmbus/status.ts';
import { beginLines, DeviceError, type ChannelOp, type DeviceControl, type HostVsp } from './device-module.ts';
import type { StateKey } from '../scenario/state-key.ts';
import type { PacketRec } from '../devices/wasm/kmcl-shim.ts';
import { namingChannel } from '../devices/wasm/violations.ts';
import { CDriverFace } from './c-driver-face.ts';
import type { CVspDriver } from './c-vsp-driver.ts';

/** What one device's C VSP needs said for CHostChannel to drive it. */
export interface CHostChannelSpec<V extends CVspDriver> {
  /** names the VSP in errors: "C VSP", "blockq C VSP" */
  name: string;
  /** the device's control: the one place a lab job's lines come from too */
  control: Pick<DeviceControl, 'command' | 'channel' | 'channelInstance' | 'begin'>;
  /** the counter (of the VSP's `counters`) that is not 0 while its timer has work: the sample's `held`, blockq's `outstanding` */
  timerCounter: string;
  /** keys a packet's context (the shim's packet record of the VSP's per-transaction state) for explore */
  keyTxContext(k: StateKey, vsp: V, pr: PacketRec | null): void;
}

/** What the executor hands each channel's face (EmulatorDevice.hostVsp's options, in part). */
export interface CHostChannelOptions {
  ch: number;
  ringPages: number;
  /** the scenario's transaction quota, 0: none */
  quota: number;
  faults: Faults;
  /** the channel sets FORCE_NEW_CHANNEL (ReofferingCHostChannel only) */
  forceNewChannel?: boolean | undefined;
}

/**
 * One channel of a C VSP behind the executor's HostVsp face (see the file's head), for a
 * VSP without a rescind: a scenario that rescinds, closes from the guest, fails a restore
 * or sets FORCE_NEW_CHANNEL is refused up front (exit 2), and a restore the VSP refuses is
 * a bad saved VM (RestoreError). ReofferingCHostChannel adds those.
 */
export class CHostChannel<V extends CVspDriver> extends CDriverFace implements HostVsp {
  protected readonly vsp: V;
  private readonly spec: CHostChannelSpec<V>;
  readonly ch: number;
  private readonly ringPages: number;
  private readonly quota: number;
  private readonly faults: Faults;
  /** the channel sets FORCE_NEW_CHANNEL: `open ... force-new-channel`, never restored */
  protected readonly forceNewChannel: boolean;
  /** the last channel object, for what asks about it while the VM is saved (nothing pending) */
  protected detached: Channel | null = null;
  private countersAt = -1;
  private counters: Record<string, number> = {};
  /** restored from a saved state and not offered yet: enable() offers it */
  protected restored = false;
  /** the next restore's callback refuses from the second packet on (a `restore` with `fail`) */
  protected refuseNextRestore = false;

  constructor(vsp: V, spec: CHostChannelSpec<V>, o: CHostChannelOptions) {
    super();
    this.vsp = vsp;
    this.spec = spec;
    this.ch = o.ch;
    this.ringPages = o.ringPages;
    this.quota = o.quota;
    this.faults = o.faults;
    this.forceNewChannel = o.forceNewChannel === true;
  }

  get channel(): Channel {
    const c = this.vsp.offered(this.ch) ?? this.detached;
    if (!c) throw new Error(`${this.spec.name}: channel ${this.ch} is not offered`);
    return c;
  }

  /** This channel's counters, read again only after the driver has run since. */
  private mine(): Record<string, number> {
    if (this.countersAt !== this.vsp.rt.generation) {
      this.counters = this.vsp.counters().find((c) => c.ch === this.ch) ?? {};
      this.countersAt = this.vsp.rt.generation;
    }
    return this.counters;
  }

  /**
   * The host serves the channel: `resume ch=N` offers and starts a restored object; the
   * first time, `open` offers the channel (the C VSP enables and starts at once).
   */
  enable(): void {
    namingChannel(this.ch, () => {
      if (this.restored) {
        this.restored = false;
        this.vsp.run(this.line('resume'));
      } else if (!this.vsp.offered(this.ch)) {
        this.vsp.run(this.spec.control.channel({ op: 'open', ch: this.ch, instance: this.spec.control.channelInstance(this.ch), ringPages: this.ringPages, loopback: true, ...(this.forceNewChannel ? { forceNewChannel: true } : {}) }));
      }
      // KMCL configuration the bench applies to each new object, as the twins' host does
      // (the C VSP sets no quota: a listed difference).
      const c = this.vsp.offered(this.ch)!;
      c.faults = this.faults;
      if (this.quota) c.setTransactionQuota(this.quota);
    });
  }

  /**
   * The control's begin lines to the VSP (HostVsp.begin), once per driver: the executor
   * calls this on every channel's face once the channels are open, as a lab job sends
   * them to its VSP then. A line the VSP refuses is bad input (the device module's), naming it.
   */
  begin(): void {
    if (this.vsp.begun) return;
    this.vsp.begun = true;
    for (const line of beginLines(this.spec.control, 'vsp')) {
      const st = this.vsp.command(line);
      if (st !== 0) throw new InputError(`the ${this.spec.name} refused its device control's begin line '${line}': status ${ntStatusHex(st)}`, { field: 'device' });
    }
  }

  send(kind: 'transaction' | 'notify', firstTx: number, count: number, size: number, guestHold: number): void {
    namingChannel(this.ch, () => {
      const next = (this.mine().next_tx ?? 0) + 1;
      if (next !== firstTx) throw new Error(`${this.spec.name} channel ${this.ch}: the bench numbers the next transaction ${firstTx}, the VSP ${next}`);
      this.vsp.run(this.spec.control.command(kind === 'transaction'
        ? { op: 'host-send', channel: this.ch, count, size, hold: guestHold }
        : { op: 'notify', dir: 'h2g', channel: this.ch, count, size }).line);
    });
  }

  /** When the VSP's timer next fires, while it has work for it; else null. */
  nextDue(): number | null {
    return (this.mine()[this.spec.timerCounter] ?? 0) > 0 ? this.vsp.nextTimerDue() : null;
  }

  completeDue(now: number): boolean {
    return namingChannel(this.ch, () => this.vsp.runTimers(now) > 0);
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
   * The VSP imports the saved state and `restore ch=N` makes a new channel object from it,
   * not yet offered: the executor restores every channel, then enables every one. A state
   * the VSP cannot import is a bad saved VM (a RestoreError, with the VM as it was); so is
   * a restore the VSP or KMCL refuses, unless the VSP re-offers (refusedRestore).
   */
  restore(buffers: readonly Uint8Array[]): void {
    namingChannel(this.ch, () => {
      const who = `${this.spec.name} channel ${this.ch}`;
      if (buffers.length !== 1) throw new RestoreError('bad-record', `${who}: the C VSP saves one buffer per channel; the saved VM holds ${buffers.length}`);
      const st = this.vsp.importState(buffers[0]!);
      if (st !== 0) throw new RestoreError('bad-record', `${who}: the C VSP refused the saved state: status ${ntStatusHex(st)}`);
      // FORCE_NEW_CHANNEL: the saved state is imported (for the numbering), not restored.
      if (this.forceNewChannel) throw new DeviceError(`${who}: FORCE_NEW_CHANNEL: not restored, offered anew`);
      const instance = this.spec.control.channelInstance(this.ch);
      if (this.refuseNextRestore) this.vsp.kmcl.restoreRefusals.set(instance, 2);
      let rs: number;
      try {
        rs = this.vsp.command(this.line('restore'));
      } finally {
        this.refuseNextRestore = false;
        this.vsp.kmcl.restoreRefusals.delete(instance);
      }
      if (rs !== 0) throw this.refusedRestore(`${who}: restore ch=${this.ch} failed: status ${ntStatusHex(rs)}`);
      this.restored = true;
    });
  }

  /** What a restore the VSP or KMCL refused is: here, with no rescind to fall back to, a bad saved VM. */
  protected refusedRestore(message: string): Error {
    return new RestoreError('bad-record', `${message}, and the VSP has no rescind to fall back to`);
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

  /** A channel operation on this channel as the device's control makes its line (DeviceControl.channel). */
  protected line(op: Exclude<ChannelOp['op'], 'open'>): string {
    return this.spec.control.channel({ op, ch: this.ch });
  }

  /**
   * For explore's state key: this object by the fields that decide anything (not the
   * driver, which the executor keys once per host through the device's keyDriver) and
   * the channel object it serves. `countersAt` and `counters` only cache the driver's
   * counters; `spec` and `faults` are fixed for the run.
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
    this.spec.keyTxContext(k, this.vsp, pointer as PacketRec | null);
  }
}

/**
 * A channel of a C VSP that has `rescind ch=N` and `open ... force-new-channel`
 * (PROTOCOL.md "Rescind and re-offer") and ends in its Closed callback what KMCL hands back
 * after a guest's close ("Guest close"): a scenario may rescind, close from the guest, fail
 * a restore or set FORCE_NEW_CHANNEL, and a restore the VSP or KMCL refuses falls back to
 * a rescind and a new offer, as with the twins.
 */
export class ReofferingCHostChannel<V extends CVspDriver> extends CHostChannel<V> {
  /** A refused restore: the executor rescinds the channel and offers it anew (a DeviceError); the VSP holds what it restored for the rescind. */
  protected override refusedRestore(message: string): Error {
    return new DeviceError(message);
  }

  /** A scenario's `restore` with `fail`: KMCL refuses this channel's second saved packet and after. */
  refuseRestoreFromSecondPacket(): void {
    this.refuseNextRestore = true;
  }

  /**
   * `rescind ch=N` (HostVsp.rescind): the C VSP disables and cleans up the channel object,
   * tracing pkt.cancel for what KMCL cancels and for what a failed restore left it. The
   * executor then makes a new face, whose enable() offers the new instance (`open`).
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
}
