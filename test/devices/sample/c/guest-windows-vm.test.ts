// The C Windows guest's VM face (devices/sample/c/guest-windows-vm.ts) as the scheduler
// sees it: the driver's periodic hold timer is due work only while it holds a host
// transaction; a held one is completed at the timer's tick after its due time; a queued
// work item is due at once; what is still in flight counts as pending.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Channel, stateChangeCallbacksInit } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';
import { INTERFACE_TYPE_GUID, MsgType, encodeMessage } from '../../../../devices/sample/protocol.ts';
import type { CWindowsGuestState } from '../../../../devices/sample/c/guest-windows-vm.ts';
import { CH, windowsGuestOn } from '../../wasm/support/windows-vm-guest.ts';

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
