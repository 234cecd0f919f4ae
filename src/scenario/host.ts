// One emulated Hyper-V host's side of a VM: the VSP instances (and their KMCL server
// channels) attached to the VM's channels. Saving the VM throws the host away; a
// restore or a migration builds a new one from the saved state.
//
// `devices: c` puts the C VSP (compiled to WebAssembly, src/devices/wasm) where the
// twins are. A C VSP driver belongs to a host name and outlives the host objects of a
// VM save, as a VSP driver outlives a VM's save on a real host (c-host-vsp.ts).

import { SampleVsp } from '../devices/vsp.ts';
import { CHostVsp } from '../devices/wasm/c-host-vsp.ts';
import { CVsp } from '../devices/wasm/c-vsp.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { Faults } from '../vmbus/faults.ts';
import type { GuestMemory } from '../vmbus/partition.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { ChannelSpec } from './model.ts';
import { fifoLength } from '../vmbus/fifo.ts';
import { toTxId } from '../vmbus/tx-id.ts';

/** What the executor uses of a host VSP, twin or C. */
export type HostVsp = Pick<SampleVsp, 'channel' | 'enable' | 'send' | 'nextDue' | 'completeDue' | 'save' | 'restore' | 'teardown' | 'isHeld' | 'completeHeld' | 'peekDelivery'>;

export interface HostOptions {
  choices: GapChoices;
  sink: TraceSink;
  now: () => number;
  saveBufferSize: number;
  instancePrefix: string;
  faults: Faults;
  /** the C VSP drivers of this run by host name (devices: c); absent: the twins */
  cDrivers?: Map<string, CVsp> | undefined;
  /** channels whose VSP refuses its saved state at this host's restore (a scenario's `restore` with `fail`) */
  failRestore?: ReadonlySet<number> | undefined;
}

export class EmulatedHost {
  readonly name: string;
  readonly vsps = new Map<number, HostVsp>();
  private readonly specs: readonly ChannelSpec[];
  private readonly opts: HostOptions;

  constructor(name: string, channels: readonly ChannelSpec[], opts: HostOptions) {
    this.name = name;
    this.specs = channels;
    this.opts = opts;
    if (opts.cDrivers) {
      let driver = opts.cDrivers.get(name);
      if (!driver) opts.cDrivers.set(name, (driver = new CVsp({ choices: opts.choices, sink: opts.sink, now: opts.now })));
      for (const c of channels) this.vsps.set(c.id, new CHostVsp(driver, c.id, c.h2gPages, c.quota, opts.faults));
      return;
    }
    for (const c of channels) this.vsps.set(c.id, this.twin(c, opts.failRestore?.has(c.id) ?? false));
  }

  private twin(c: ChannelSpec, failRestore: boolean): SampleVsp {
    const opts = this.opts;
    const v = new SampleVsp({
      ch: c.id,
      instance: `${opts.instancePrefix}-${c.id}`,
      choices: opts.choices,
      sink: opts.sink,
      now: opts.now,
      saveBufferSize: opts.saveBufferSize,
      quota: c.quota || undefined,
      forceNewChannel: c.forceNewChannel,
      failRestore,
    });
    v.channel.faults = opts.faults;
    if (c.firstTx !== undefined) v.channel.nextTransId = toTxId(c.firstTx);
    return v;
  }

  /** Offers every channel (but those in `skip`) and attaches it to the guest's rings. */
  attach(memory: GuestMemory, signalGuest: (ch: number, what: 'interrupt' | 'writable') => void, restored: boolean, skip?: ReadonlySet<number>): void {
    for (const [ch, vsp] of this.vsps) {
      if (skip?.has(ch)) continue;
      this.open(ch, vsp, memory, signalGuest, restored);
    }
  }

  private open(ch: number, vsp: HostVsp, memory: GuestMemory, signalGuest: (ch: number, what: 'interrupt' | 'writable') => void, restored: boolean): void {
    vsp.enable();
    vsp.channel.signalPeer = (what) => signalGuest(ch, what);
    const rings = memory.hostRings(ch);
    vsp.channel.connectionOpened(rings.out, rings.in, { restored });
  }

  /**
   * Rescinds channel `ch`'s current instance (its VSP ends what it owns, then Disable and
   * Cleanup) and puts a new VSP object in its place, not yet offered. The new object keeps
   * the channel's next KMCL transaction id: the descriptor ids of the two instances never
   * meet [I].
   */
  rescind(ch: number): HostVsp {
    const old = this.vsps.get(ch)!;
    // devices: c has no rescind command yet: the executor refuses such a scenario first.
    if (!(old instanceof SampleVsp)) throw new Error(`channel ${ch}: the C VSP cannot be rescinded here`);
    old.rescind();
    const v = this.twin(this.specs.find((c) => c.id === ch)!, false);
    v.channel.nextTransId = old.channel.nextTransId;
    this.vsps.set(ch, v);
    return v;
  }

  /** The new instance of channel `ch` is offered (`ch.offer`) and the guest opens it on `memory`'s rings. */
  reoffer(ch: number, memory: GuestMemory, signalGuest: (ch: number, what: 'interrupt' | 'writable') => void): void {
    const vsp = this.vsps.get(ch)! as SampleVsp;
    vsp.reoffer();
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
