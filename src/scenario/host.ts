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

  constructor(name: string, channels: readonly ChannelSpec[], opts: HostOptions) {
    this.name = name;
    for (const c of channels) {
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
      this.vsps.set(c.id, opts.cDrivers && cHost ? cHost(name, { ...o, h2gPages: c.h2gPages, drivers: opts.cDrivers, replace: opts.cVspReplace }) : opts.device.hostVsp(o));
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
