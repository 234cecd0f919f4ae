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
  /** sources of the C VSP replaced for this run (ExecuteOptions.cVspReplace) */
  cVspReplace?: Readonly<Record<string, string>> | undefined;
}

export class EmulatedHost {
  readonly name: string;
  readonly vsps = new Map<number, HostVsp>();

  constructor(name: string, channels: readonly ChannelSpec[], opts: HostOptions) {
    this.name = name;
    if (opts.cDrivers) {
      let driver = opts.cDrivers.get(name);
      if (!driver) {
        const replace = opts.cVspReplace ? { replace: opts.cVspReplace } : {};
        opts.cDrivers.set(name, (driver = new CVsp({ choices: opts.choices, sink: opts.sink, now: opts.now, ...replace })));
      }
      for (const c of channels) this.vsps.set(c.id, new CHostVsp(driver, c.id, c.h2gPages, c.quota, opts.faults));
      return;
    }
    for (const c of channels) {
      this.vsps.set(
        c.id,
        new SampleVsp({
          ch: c.id,
          instance: `${opts.instancePrefix}-${c.id}`,
          choices: opts.choices,
          sink: opts.sink,
          now: opts.now,
          saveBufferSize: opts.saveBufferSize,
          quota: c.quota || undefined,
        }),
      );
      this.vsps.get(c.id)!.channel.faults = opts.faults;
      if (c.firstTx !== undefined) this.vsps.get(c.id)!.channel.nextTransId = toTxId(c.firstTx);
    }
  }

  /** Offers every channel and attaches it to the guest's rings. */
  attach(memory: GuestMemory, signalGuest: (ch: number, what: 'interrupt' | 'writable') => void, restored: boolean): void {
    for (const [ch, vsp] of this.vsps) {
      vsp.enable();
      vsp.channel.signalPeer = (what) => signalGuest(ch, what);
      const rings = memory.hostRings(ch);
      vsp.channel.connectionOpened(rings.out, rings.in, { restored });
    }
  }

  /** Work still owned by the host: queued sends, transactions awaiting completion, held requests. */
  pending(): number {
    let n = 0;
    for (const v of this.vsps.values()) n += fifoLength(v.channel.queue) + v.channel.awaiting.size + (v.nextDue() === null ? 0 : 1);
    return n;
  }
}
