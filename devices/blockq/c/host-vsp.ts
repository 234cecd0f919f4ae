// One channel of blockq's C VSP on an emulated host, with the face the scenario executor
// gives a host VSP (HostVsp; the twin's is ../vsp.ts), so `devices: c` runs a blockq
// scenario on the C driver. Everything goes through the VSP's control interface
// (blockq-control.h, blockq-command.h), as a lab job would use it: `open`, `event`,
// `note`, `save`, `detach`, `discard`, `restore`, `resume` (each line made by ../control.ts,
// where a lab job's would come from), and the export and import of a channel's saved state.
//
// One C VSP driver serves every channel of a host and outlives the VM's saves, as a VSP
// driver outlives a VM on a real host. At a VM save: `save`, the export into the VM's
// saved state, `detach`. At a restore (here, after a migration, from a checkpoint): the
// import and `restore`, then `resume` when the executor enables the channel. A VM
// discarded unsaved (a checkpoint applied over it) is `discard`.

import type { Channel } from '../../../src/vmbus/channel.ts';
import type { HostVsp } from '../../../src/device-api/device-module.ts';
import type { Faults } from '../../../src/vmbus/faults.ts';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';
import { namingChannel, replayRunsTwins } from '../../../src/devices/wasm/violations.ts';
import { ntStatusHex } from '../../../src/vmbus/status.ts';
import type { BlockqCVsp } from './vsp.ts';
import type { StateKey } from '../../../src/scenario/state-key.ts';
import type { PacketRec } from '../../../src/devices/wasm/kmcl-shim.ts';
import { keyTxContext } from './vsp-key.ts';
import { channel, channelInstance, command } from '../control.ts';
import type { ChannelOp } from '../../../src/device-api/device-module.ts';

export class BlockqCHostVsp implements HostVsp {
  private readonly vsp: BlockqCVsp;
  readonly ch: number;
  private readonly ringPages: number;
  private readonly quota: number;
  private readonly faults: Faults;
  /** the last channel object, for what asks about it while the VM is saved */
  private detached: Channel | null = null;
  private countersAt = -1;
  private counters: Record<string, number> = {};
  /** restored from a saved state and not offered yet: enable() offers it */
  private restored = false;

  constructor(vsp: BlockqCVsp, ch: number, ringPages: number, quota: number, faults: Faults) {
    this.vsp = vsp;
    this.ch = ch;
    this.ringPages = ringPages;
    this.quota = quota;
    this.faults = faults;
  }

  get channel(): Channel {
    const c = this.vsp.offered(this.ch) ?? this.detached;
    if (!c) throw new Error(`blockq C VSP: channel ${this.ch} is not offered`);
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

  enable(): void {
    namingChannel(this.ch, () => {
      if (this.restored) {
        this.restored = false;
        this.vsp.run(this.line('resume'));
      } else if (!this.vsp.offered(this.ch)) {
        this.vsp.run(channel({ op: 'open', ch: this.ch, instance: instanceGuid(this.ch), ringPages: this.ringPages, loopback: true }));
      }
      // KMCL configuration the bench applies to each new object, as the twin's host does.
      const c = this.vsp.offered(this.ch)!;
      c.faults = this.faults;
      if (this.quota) c.setTransactionQuota(this.quota);
    });
  }

  send(kind: 'transaction' | 'notify', firstTx: number, count: number, size: number, guestHold: number): void {
    namingChannel(this.ch, () => {
      const next = (this.mine().next_tx ?? 0) + 1;
      if (next !== firstTx) throw new Error(`blockq C VSP channel ${this.ch}: the bench numbers the next message ${firstTx}, the VSP ${next}`);
      this.vsp.run(command(kind === 'transaction'
        ? { op: 'host-send', channel: this.ch, count, size, hold: guestHold }
        : { op: 'notify', dir: 'h2g', channel: this.ch, count, size }).line);
    });
  }

  /** When the VSP's answer timer fires, while it has Requests outstanding; else null. */
  nextDue(): number | null {
    return (this.mine().outstanding ?? 0) > 0 ? this.vsp.nextTimerDue() : null;
  }

  completeDue(now: number): boolean {
    return namingChannel(this.ch, () => this.vsp.runTimers(now) > 0);
  }

  resume(): void {
    namingChannel(this.ch, () => this.vsp.run(this.line('resume')));
  }

  save(): Uint8Array[] {
    return namingChannel(this.ch, () => {
      this.vsp.run(this.line('save'));
      return [this.vsp.exportState(this.ch)];
    });
  }

  /** What the VSP refuses is a bad saved VM: a RestoreError, with the VM as it was. */
  restore(buffers: readonly Uint8Array[]): void {
    namingChannel(this.ch, () => {
      if (buffers.length !== 1) throw new RestoreError('bad-record', `blockq VSP channel ${this.ch}: the C VSP saves one buffer per channel; the saved VM holds ${buffers.length}`);
      const st = this.vsp.importState(buffers[0]!);
      if (st !== 0) throw new RestoreError('bad-record', `blockq VSP channel ${this.ch}: the C VSP refused the saved state: status ${ntStatusHex(st)}`);
      const rs = this.vsp.command(this.line('restore'));
      if (rs !== 0) throw new RestoreError('bad-record', `blockq VSP channel ${this.ch}: restore ch=${this.ch} failed: status ${ntStatusHex(rs)}`);
      this.restored = true;
    });
  }

  teardown(opts: { discard: boolean }): void {
    namingChannel(this.ch, () => {
      this.detached = this.channel;
      this.vsp.run(this.line(opts.discard ? 'discard' : 'detach'));
    });
  }

  /** A channel operation on this channel as blockq's control makes its line (../control.ts). */
  private line(op: Exclude<ChannelOp['op'], 'open'>): string {
    return channel({ op, ch: this.ch });
  }


  /**
   * explore's state key of this face: what it holds beside the driver (keyed once, by the
   * device's keyDriver: vsp-key.ts) and the channel object it serves. `countersAt` and
   * `counters` only cache the driver's counters.
   */
  keyers(add: (object: object, key: (k: StateKey) => void) => void): void {
    add(this, (k) => {
      k.num(this.ch);
      k.num(this.ringPages);
      k.num(this.quota);
      k.num(this.restored ? 1 : 0);
      k.value(this.vsp.offered(this.ch) ?? this.detached);
    });
  }

  /** explore's state key: a packet's context is the shim's packet record of a BQ_TX */
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

/** The instance GUID whose last 8 hex digits are the channel number (control.ts's). */
export function instanceGuid(ch: number): string {
  return channelInstance(ch);
}
