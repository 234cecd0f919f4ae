// The sample's C Windows guest as an emulated VM's guest (devices: c-windows), on one
// channel whose host side only takes what it is signalled (no host runs here): the
// guest's requests sit in the ring awaiting their completions, and once the ring is
// full in KMCL's library queue. For the image tests.

import sample from '../../../../devices/sample/device.ts';
import type { EmulatorGuest, GuestDriver } from '../../../../src/device-api/device-module.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';

export const CH = 0;

export interface WindowsVmGuest {
  side: EmulatorGuest;
  state: unknown;
  guest: GuestDriver;
  mem: GuestMemory;
  sink: MemorySink;
}

export function windowsGuestOn(clock: { now: number }, g2hPages = 2): WindowsVmGuest {
  const side = sample.emulator!.cGuest!('windows', { now: () => clock.now });
  const mem = new GuestMemory([{ ch: CH, g2hPages, h2gPages: 2 }]);
  const state = side.newGuestState([CH], [1]);
  const sink = new MemorySink();
  const guest = side.guest(state, new Map([[CH, mem.guestRings(CH)]]), sink, { interrupt: () => {}, writable: () => {} });
  guest.probe!();
  return { side, state, guest, mem, sink };
}

/** The guest revived from `image` over the same guest memory (the VM's rings), as a restored VM's. */
export function revived(g: WindowsVmGuest, image: unknown, now: number): { state: unknown; guest: GuestDriver; sink: MemorySink } {
  const state = g.side.reviveGuest(structuredClone(image), now);
  const sink = new MemorySink();
  const guest = g.side.guest(state, new Map([[CH, g.mem.guestRings(CH)]]), sink, { interrupt: () => {}, writable: () => {} });
  return { state, guest, sink };
}

export type WinImg = {
  kind: string;
  guestNow: number;
  driver: { runtime: { memory: Uint8Array }; wdf: Record<string, unknown> & { objects: Array<Record<string, unknown>> }; kmcl: Record<string, unknown> & { channels: Array<Record<string, unknown>>; packets: Array<Record<string, unknown>> } };
};

/** An image with its memory as a length, for a readable deep comparison (the bytes compared apart). */
export function tables(i: WinImg): unknown {
  return { ...i, driver: { ...i.driver, runtime: { ...i.driver.runtime, memory: i.driver.runtime.memory.length } } };
}
