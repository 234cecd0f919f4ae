// One emulated Hyper-V host's side of a VM: the VSP instances (and their KMCL server
// channels) attached to the VM's channels. Saving the VM throws the host away; a
// restore or a migration builds a new one from the saved state.

import { SampleVsp } from '../devices/vsp.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { Faults } from '../vmbus/faults.ts';
import type { GuestMemory } from '../vmbus/partition.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { ChannelSpec } from './model.ts';
import { fifoLength } from '../vmbus/fifo.ts';
import { toTxId } from '../vmbus/tx-id.ts';

export class EmulatedHost {
  readonly name: string;
  readonly vsps = new Map<number, SampleVsp>();

  constructor(
    name: string,
    channels: readonly ChannelSpec[],
    opts: { choices: GapChoices; sink: TraceSink; now: () => number; saveBufferSize: number; instancePrefix: string; faults: Faults },
  ) {
    this.name = name;
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
