// The C Windows guest driver on the emulator, with a small TypeScript host on the other
// end: a KMCL server Channel that completes every Request (PROTOCOL.md) and can send
// HostTransactions, Notifies or bytes that are no message at all.

import { Channel, stateChangeCallbacksInit } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { STATUS } from '../../../../src/vmbus/status.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import { INTERFACE_TYPE_GUID, MsgType, decodeHeader, encodeCompletion, encodeMessage, isIntact, statusFor } from '../../../../devices/sample/protocol.ts';
import { CGuestWindows, type CGuestWindowsOptions } from '../../../../devices/sample/c/guest-windows.ts';
import { stepSide } from '../../../vmbus/support/channel-pair.ts';

export const CH = 42;
export const INSTANCE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a';

export interface GuestHarness {
  guest: CGuestWindows;
  server: Channel;
  clock: { now: number };
  pump(limit?: number): number;
  advance(ms: number): void;
  /** the host sends raw bytes (a message, or garbage) */
  hostSend(payload: Uint8Array, wantCompletion: boolean): void;
  hostTransaction(tx: number, len: number, holdMs: number): void;
}

export function makeGuestHarness(opts: Partial<Omit<CGuestWindowsOptions, 'sink' | 'now' | 'choices' | 'onEnabled'>> = {}): GuestHarness {
  const clock = { now: 0 };
  const choices = { ...DEFAULT_CHOICES };
  const mem = new GuestMemory([{ ch: CH, g2hPages: 4, h2gPages: 4 }]);
  const server = new Channel(true, CH, choices);
  server.initSetStateChangeCallbacks(stateChangeCallbacksInit());
  server.initSetProcessPacketCallbacks((c, pkt, buf) => {
    const h = decodeHeader(buf);
    if (h && h.type === MsgType.Request) c.packetComplete(pkt, encodeCompletion(buf, h, statusFor(h.tx, isIntact(buf, h))));
    else c.packetComplete(pkt, null);
  });
  server.serverInitSetTargetInterfaceId(INTERFACE_TYPE_GUID, INSTANCE);
  if (server.enable() !== STATUS.SUCCESS) throw new Error('server enable failed');
  server.start();
  const waiting: Channel[] = [];
  let client: Channel | null = null;
  // KMCL's Enable returns before the peer answers: the offer is taken after the driver's
  // call has returned, by the harness.
  const guest = new CGuestWindows({ ...opts, choices, sink: new MemorySink(), now: () => clock.now, onEnabled: (c) => waiting.push(c) });
  const connect = (): void => {
    const c = waiting.shift();
    if (!c) return;
    c.config.interfaceInstance = INSTANCE;
    server.signalPeer = (w) => (w === 'interrupt' ? (c.interrupt = true) : (c.writable = true));
    c.signalPeer = (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true));
    const hr = mem.hostRings(CH);
    const gr = mem.guestRings(CH);
    server.connectionOpened(hr.out, hr.in, { restored: false });
    c.connectionOpened(gr.out, gr.in, { restored: false });
    client = c;
  };
  connect();
  const step = (c: Channel | null): boolean => c !== null && stepSide(c);
  const h: GuestHarness = {
    guest, server, clock,
    pump(limit = 100_000) {
      let n = 0;
      while (step(server) || step(client) || guest.runWorkItems() > 0) if (++n > limit) throw new Error('pump did not settle');
      return n;
    },
    advance(ms) {
      const end = clock.now + ms;
      for (;;) {
        const due = guest.nextTimerDue();
        if (due === null || due > end) break;
        clock.now = Math.max(clock.now, due);
        guest.runTimers(clock.now);
        h.pump();
      }
      clock.now = end;
      h.pump();
    },
    hostSend(payload, wantCompletion) {
      server.packetSend(server.packetAllocate(), payload, wantCompletion ? 1 : 0);
    },
    hostTransaction(tx, len, holdMs) {
      h.hostSend(encodeMessage(MsgType.HostTransaction, tx, len, holdMs), true);
    },
  };
  return h;
}
