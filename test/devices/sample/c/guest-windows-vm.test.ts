// The C Windows guest's VM face (devices/sample/c/guest-windows-vm.ts) as the scheduler
// sees it: the driver's periodic hold timer is due work only while it holds a host
// transaction; a held one is completed at the timer's tick after its due time; a queued
// work item is due at once; what is still in flight counts as pending. With several
// channels: the driver's timer work is the first channel's, pending counts every channel,
// and a rescind removes only its channel's device.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Channel, stateChangeCallbacksInit } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';
import { INTERFACE_TYPE_GUID, MsgType, encodeMessage } from '../../../../devices/sample/protocol.ts';
import type { CWindowsGuestState } from '../../../../devices/sample/c/guest-windows-vm.ts';
import { CH, windowsGuestOn } from '../../wasm/support/windows-vm-guest.ts';
import sample from '../../../../devices/sample/device.ts';
import { sampleControl } from '../../../../devices/sample/control.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** A guest whose host end is a bare server Channel on the same rings, to send HostTransactions from. */
function withHost() {
  const clock = { now: 0 };
  const g = windowsGuestOn(clock);
  const server = new Channel(true, CH, DEFAULT_CHOICES);
  server.initSetStateChangeCallbacks(stateChangeCallbacksInit());
  server.initSetProcessPacketCallbacks((c, pkt) => c.packetComplete(pkt, null));
  server.serverInitSetTargetInterfaceId(INTERFACE_TYPE_GUID, '8d2f5c3a-71b4-4e0e-9a6d-000000000000');
  server.enable();
  server.start();
  const hr = g.mem.hostRings(CH);
  server.signalPeer = (w) => g.guest.signal(CH, w);
  server.connectionOpened(hr.out, hr.in, { restored: false });
  const deliver = () => {
    while (g.guest.canDeliver(CH)) g.guest.deliverOne(CH, clock.now);
  };
  return { clock, g, server, deliver };
}

describe.skipIf(!toolchain)('the C Windows guest\'s VM face', () => {
  it('its hold timer is due work only while it holds a host transaction, which completes at the tick after its due time', () => {
    const { clock, g, server, deliver } = withHost();
    expect(g.guest.nextDue(CH)).toBeNull();
    expect(g.guest.pending()).toBe(0);
    server.packetSend(server.packetAllocate(), encodeMessage(MsgType.HostTransaction, 1, 64, 7), 1);
    deliver();
    expect(g.guest.pending()).toBe(1);
    const due = g.guest.nextDue(CH)!;
    expect(due).toBe(5); // the first 5 ms tick: not due yet at 5 (held 7 ms)
    clock.now = 5;
    g.guest.completeDue(CH, clock.now);
    expect(g.sink.events.some((e) => e.ev === 'pkt.complete')).toBe(false);
    expect(g.guest.nextDue(CH)).toBe(10);
    clock.now = 10;
    g.guest.completeDue(CH, clock.now);
    expect(g.sink.events.filter((e) => e.ev === 'pkt.complete').map((e) => (e as { tx: number }).tx)).toEqual([1]);
    expect(g.guest.nextDue(CH)).toBeNull();
    expect(g.guest.pending()).toBe(0);
  });

  it('a queued work item is due at once, and completeDue runs it', () => {
    const { clock, g } = withHost();
    // The host goes away under the client: KMCL closes it, and its Closed queues the re-enable work item.
    const drv = (g.state as CWindowsGuestState).drv;
    drv.client()!.peerClosed();
    clock.now = 3;
    expect(g.guest.nextDue(CH)).toBe(3);
    g.guest.completeDue(CH, clock.now);
    expect(g.guest.nextDue(CH)).toBeNull();
    expect(drv.client()!.state.conn).toBe('enabled');
  });
});

describe.skipIf(!toolchain)('the C Windows guest\'s VM face with several channels', () => {
  /** Channels 0 and 1, each with a bare server Channel on its rings, every device probed. */
  function twoChannels() {
    const clock = { now: 0 };
    const side = sample.emulator!.cGuest!('windows', { now: () => clock.now });
    const mem = new GuestMemory([0, 1].map((ch) => ({ ch, g2hPages: 2, h2gPages: 2 })));
    const state = side.newGuestState([0, 1], [1, 1]);
    const sink = new MemorySink();
    const guest = side.guest(state, new Map([0, 1].map((ch) => [ch, mem.guestRings(ch)])), sink, { interrupt: () => {}, writable: () => {} });
    guest.probe!();
    const servers = [0, 1].map((ch) => {
      const server = new Channel(true, ch, DEFAULT_CHOICES);
      server.initSetStateChangeCallbacks(stateChangeCallbacksInit());
      server.initSetProcessPacketCallbacks((c, pkt) => c.packetComplete(pkt, null));
      server.serverInitSetTargetInterfaceId(INTERFACE_TYPE_GUID, sampleControl.channelInstance(ch));
      server.enable();
      server.start();
      const hr = mem.hostRings(ch);
      server.signalPeer = (w) => guest.signal(ch, w);
      server.connectionOpened(hr.out, hr.in, { restored: false });
      return server;
    });
    const deliver = () => {
      for (const ch of [0, 1]) while (guest.canDeliver(ch)) guest.deliverOne(ch, clock.now);
    };
    return { clock, mem, guest, sink, servers, deliver };
  }

  it('a host transaction held on channel 1 is due work on the first channel\'s timer, pending counts every channel, and a rescind removes only its channel\'s device', () => {
    const { clock, mem, guest, sink, servers, deliver } = twoChannels();
    servers[1]!.packetSend(servers[1]!.packetAllocate(), encodeMessage(MsgType.HostTransaction, 1, 64, 7), 1);
    guest.send(0, 'request', 2, 64, 'inline', 0);
    deliver();
    expect(guest.pending()).toBe(3);
    expect(guest.nextDue(1)).toBeNull();
    expect(guest.nextDue(0)).toBe(5);
    // Channel 1's offer goes: its device is removed; what it held is dropped, channel 0 keeps its requests.
    guest.rescind!(1);
    expect(guest.isClosed!(1)).toBe(true);
    expect(guest.isClosed!(0)).toBe(false);
    expect(guest.pending()).toBe(2);
    expect(sink.events.filter((e) => e.ev === 'ch.state' && (e as { ch: number }).ch === 1).map((e) => (e as { state: string }).state).slice(-2)).toEqual(['Paused', 'Closed']);
    // The new instance is a new device on fresh rings.
    for (const r of [mem.g2h(1), mem.h2g(1)]) r.initialize();
    guest.reopen!(1, mem.guestRings(1));
    expect(guest.isClosed!(1)).toBe(false);
    expect(sink.events.filter((e) => e.ev === 'ch.state' && (e as { ch: number }).ch === 1).map((e) => (e as { state: string }).state).slice(-4)).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
    clock.now = 5;
    expect(guest.completeDue(0, clock.now)).toBe(true);
  });
});
