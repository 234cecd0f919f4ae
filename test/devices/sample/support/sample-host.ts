// The set-up the sample VSP twin's tests share: an emulated host running the sample
// device on one channel over fresh guest memory. The host->guest ring is one page, so a
// few host transactions fill it and the rest wait in the library's queue.

import { EmulatedHost } from '../../../../src/scenario/host.ts';
import sample from '../../../../devices/sample/device.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { DEFAULT_CHOICES, type GapChoices } from '../../../../src/vmbus/choices.ts';
import { Faults } from '../../../../src/vmbus/faults.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import type { HostVsp } from '../../../../src/device-api/device-module.ts';

const CHANNEL = { id: 0, g2hPages: 4, h2gPages: 1, quota: 0 };

/** The host, not yet attached: its trace, the host, and the guest memory to attach it to. */
export function sampleHost(opts: { choices?: GapChoices; forceNewChannel?: boolean } = {}): { sink: MemorySink; h: EmulatedHost; memory: GuestMemory } {
  const sink = new MemorySink('emulator');
  const h = new EmulatedHost('host-a', [{ ...CHANNEL, forceNewChannel: opts.forceNewChannel ?? false }], {
    device: sample.emulator!, choices: opts.choices ?? DEFAULT_CHOICES, sink, now: () => 0, saveBufferSize: 4096, instancePrefix: 't', faults: new Faults(),
  });
  const memory = new GuestMemory([{ ch: CHANNEL.id, g2hPages: CHANNEL.g2hPages, h2gPages: CHANNEL.h2gPages }]);
  return { sink, h, memory };
}

/**
 * The host attached (the guest answers nothing), its VSP having sent 40 transactions of
 * 200 bytes that want completions: some in the one-page ring awaiting, the rest queued.
 */
export function hostWithTraffic(): { sink: MemorySink; vsp: HostVsp } {
  const { sink, h, memory } = sampleHost();
  h.attach(memory, () => {}, false);
  const vsp = h.vsps.get(CHANNEL.id)!;
  vsp.send('transaction', 1, 40, 200, 1000);
  return { sink, vsp };
}

/** What a save hands out after the VSP sent `count` transactions of 200 bytes (awaiting their completions). */
export function savedTransactions(count: number): Uint8Array[] {
  const { h, memory } = sampleHost();
  h.attach(memory, () => {}, false);
  const vsp = h.vsps.get(CHANNEL.id)!;
  vsp.send('transaction', 1, count, 200, 1000);
  return vsp.save();
}
