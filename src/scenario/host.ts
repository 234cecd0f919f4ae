// One emulated Hyper-V host's side of a VM: the VSP instances (and their KMCL server
// channels) attached to the VM's channels. Saving the VM throws the host away; a
// restore or a migration builds a new one from the saved state.
//
// The VSPs are the device module's (src/device-api): its TypeScript twins, or with
// `devices: c` its C VSP compiled to WebAssembly. A C VSP driver belongs to a host name and
// outlives the host objects of a VM save, as a VSP driver outlives a VM's save on a real host.

import type { EmulatorDevice, HostVsp } from '../device-api/device-module.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { Faults } from '../vmbus/faults.ts';
import type { GuestMemory } from '../vmbus/partition.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { ChannelSpec } from './model.ts';
import { fifoLength } from '../vmbus/fifo.ts';
import { toTxId } from '../vmbus/tx-id.ts';
import { SERVER_INIT_FLAG_FORCE_NEW_CHANNEL } from '../vmbus/channel-types.ts';
import { STATUS, statusName } from '../vmbus/status.ts';
import { InputError } from '../errors.ts';

export type { HostVsp };

export interface HostOptions {
  /** the device's emulator side (its module's `emulator`) */
  device: EmulatorDevice;
  choices: GapChoices;
  sink: TraceSink;
  now: () => number;
  saveBufferSize: number;
  instancePrefix: string;
  faults: Faults;
  /** devices: c: the device's C VSP drivers of this run by host name; absent: the twins */
  cDrivers?: Map<string, unknown> | undefined;
  /** devices: c: sources of the C VSP replaced for this run (ExecuteOptions.cVspReplace) */
  cVspReplace?: Readonly<Record<string, string>> | undefined;
}

export class EmulatedHost {
  readonly name: string;
  readonly vsps = new Map<number, HostVsp>();
  /** the VSPs are the device's C VSP (devices: c), whose channel objects exist only while offered */
  readonly cDevices: boolean;
  private readonly specs: readonly ChannelSpec[];
  private readonly opts: HostOptions;

  constructor(name: string, channels: readonly ChannelSpec[], opts: HostOptions) {
    this.name = name;
    this.specs = channels;
    this.opts = opts;
    this.cDevices = opts.cDrivers !== undefined;
    for (const c of channels) this.vsps.set(c.id, this.makeVsp(c));
  }

  private makeVsp(c: ChannelSpec): HostVsp {
    const opts = this.opts;
    const o = {
      ch: c.id,
      instance: `${opts.instancePrefix}-${c.id}`,
      choices: opts.choices,
      sink: opts.sink,
      now: opts.now,
      saveBufferSize: opts.saveBufferSize,
      quota: c.quota || undefined,
      faults: opts.faults,
      firstTransId: c.firstTx === undefined ? undefined : toTxId(c.firstTx),
    };
    const cHost = opts.device.cHost;
    // The C VSP sets FORCE_NEW_CHANNEL itself (`open ... force-new-channel`): its channel
    // object exists only once offered.
    if (opts.cDrivers && cHost) return cHost(this.name, { ...o, h2gPages: c.h2gPages, drivers: opts.cDrivers, replace: opts.cVspReplace, forceNewChannel: c.forceNewChannel === true });
    const vsp = opts.device.hostVsp(o);
    if (c.forceNewChannel) setForceNewChannel(vsp, c.id);
    return vsp;
  }

  /**
   * Offers every channel (but those in `skip`) and attaches it to the guest's rings; those
   * in `offerOnly` are offered and not opened (the guest has them closed).
   */
  attach(memory: GuestMemory, signalGuest: (ch: number, what: 'interrupt' | 'writable') => void, restored: boolean, skip?: ReadonlySet<number>, offerOnly?: ReadonlySet<number>): void {
    for (const [ch, vsp] of this.vsps) {
      if (skip?.has(ch)) continue;
      vsp.enable();
      if (offerOnly?.has(ch)) continue;
      vsp.channel.signalPeer = (what) => signalGuest(ch, what);
      const rings = memory.hostRings(ch);
      vsp.channel.connectionOpened(rings.out, rings.in, { restored });
    }
  }

  /**
   * Rescinds channel `ch`'s current instance (`ch.rescind`; the VSP ends what it owns, then
   * Disable and Cleanup: HostVsp.rescind) and puts a new VSP object in its place, not yet
   * offered. The new object keeps the channel's next KMCL transaction id: the descriptor
   * ids of the two instances never meet [I].
   */
  rescind(ch: number): void {
    const old = this.vsps.get(ch)!;
    // (The executor refuses a scenario that rescinds when the device's guest twin cannot;
    // a VSP twin without rescind beside such a guest is refused here.)
    if (!old.rescind) throw new InputError(`channel ${ch}: the device's VSP twin has no rescind (HostVsp.rescind), so it cannot be rescinded or offered anew`, { field: 'device' });
    this.opts.sink.emit({ side: 'host', ev: 'ch.rescind', ch });
    old.rescind();
    const v = this.makeVsp(this.specs.find((c) => c.id === ch)!);
    // (A C VSP's new object exists only once offered: its KMCL numbers descriptors afresh.)
    if (!this.cDevices) v.channel.nextTransId = old.channel.nextTransId;
    this.vsps.set(ch, v);
  }

  /** The new instance of channel `ch` is offered: `ch.offer`, then the VSP's Enable. */
  offer(ch: number): void {
    this.opts.sink.emit({ side: 'host', ev: 'ch.offer', ch });
    this.vsps.get(ch)!.enable();
  }

  /** The guest opens channel `ch`'s offered instance on `memory`'s rings (a new connection: Opened runs). */
  open(ch: number, memory: GuestMemory, signalGuest: (ch: number, what: 'interrupt' | 'writable') => void): void {
    const vsp = this.vsps.get(ch)!;
    vsp.channel.signalPeer = (what) => signalGuest(ch, what);
    const rings = memory.hostRings(ch);
    vsp.channel.connectionOpened(rings.out, rings.in, { restored: false });
  }

  /** Work still owned by the host: queued sends, transactions awaiting completion, held requests. */
  pending(): number {
    let n = 0;
    for (const v of this.vsps.values()) n += fifoLength(v.channel.queue) + v.channel.awaiting.size + (v.nextDue() === null ? 0 : 1);
    return n;
  }
}

/**
 * A scenario's `forceNewChannel`: VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL set on
 * the VSP's server channel while it is still being initialised (before Enable), beside
 * whatever flags the VSP set, as a VSP built with the flag would set it. The bench sets it
 * so that any device's twins can be run with it.
 */
function setForceNewChannel(vsp: HostVsp, ch: number): void {
  const c = vsp.channel;
  const st = c.serverInitSetFlags(c.config.serverFlags | SERVER_INIT_FLAG_FORCE_NEW_CHANNEL);
  if (st !== STATUS.SUCCESS) throw new Error(`channel ${ch}: VmbServerChannelInitSetFlags(FORCE_NEW_CHANNEL) failed with ${statusName(st)}`);
}
