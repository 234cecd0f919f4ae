// A device's C Linux guest driver and its C VSP on one clock, one channel between them,
// without the scenario executor: the VMBus core's probe of the guest for the VSP's offer,
// a pump that runs both sides until nothing moves, and an advance of the clock that runs
// their timers and delayed work as they fall due. Shared by the sample's
// (test/devices/wasm/c-guest-linux.test.ts) and blockq's (test/devices/blockq/c-guest.test.ts)
// guest tests.

import { expect } from 'vitest';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import { CGuestLinux } from '../../../../src/devices/wasm/c-guest-linux.ts';
import type { DriverRecipe } from '../../../../src/devices/wasm/build.ts';
import type { CVspDriver } from '../../../../src/device-api/c-vsp-driver.ts';

export interface CLinuxPairOptions<V extends CVspDriver> {
  /** the device's C VSP, writing into `sink` on the pair's clock */
  vsp: (sink: MemorySink, now: () => number) => V;
  /** how the device's Linux module builds */
  recipe: DriverRecipe;
  ch: number;
  instance: string;
  /** the VSP's command that offers channel `ch` (instance `instance`, 4 ring pages) */
  open: string;
}

/** The guest driver loaded and probed for one channel of the device's C VSP, on one clock. */
export function cLinuxPair<V extends CVspDriver>(o: CLinuxPairOptions<V>) {
  const { ch } = o;
  const clock = { now: 0 };
  const sink = new MemorySink();
  const vsp = o.vsp(sink, () => clock.now);
  const guest = new CGuestLinux({ recipe: o.recipe, now: () => clock.now, ringPages: 4 });
  const mem = new GuestMemory([{ ch, g2hPages: 4, h2gPages: 4 }]);
  vsp.run(o.open);
  const server = vsp.offered(ch)!;
  server.signalPeer = (w) => {
    if (w === 'interrupt') guest.signal(ch);
  };
  /** Both sides run until neither has anything to do: deliveries, flushes, the guest's interrupt, the VSP's work items. */
  const pump = (): void => {
    for (let n = 0; n < 100_000; n++) {
      if (server.canDeliver()) server.deliverOne();
      else if (server.canFlush()) server.flushOne();
      else if (!guest.runInterrupt() && vsp.runWorkItems() === 0) return;
    }
    throw new Error('pump did not settle');
  };
  guest.linux.onSleep = () => pump(); // while the guest's thread sleeps, the host runs
  expect(guest.offer(ch, o.instance, mem.guestRings(ch), (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true)))).toBe(0);
  const hr = mem.hostRings(ch);
  server.connectionOpened(hr.out, hr.in, { restored: false });
  /** The clock `ms` on, each side's timers and delayed work run as they fall due. */
  const advance = (ms: number): void => {
    const end = clock.now + ms;
    pump(); // what was just written arms its timers first
    for (;;) {
      const due = [vsp.nextTimerDue(), guest.nextWorkDue()].filter((d): d is number => d !== null && d <= end).sort((a, b) => a - b)[0];
      if (due === undefined) break;
      clock.now = Math.max(clock.now, due);
      vsp.runTimers(clock.now);
      guest.runWork(clock.now);
      pump();
    }
    clock.now = end;
    pump();
  };
  return { vsp, guest, sink, clock, pump, advance };
}
