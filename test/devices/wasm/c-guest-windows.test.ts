// The C Windows guest driver runs on the emulator through its own control interface:
// it takes the offer, sends Requests the host completes, holds and completes the host's
// transactions on its timer, and writes its JSON Lines trace. With several channels: one
// PnP device per offer behind one control device, and a trace that outlives a device.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { makeGuestHarness } from './support/guest-harness.ts';
import { Channel, stateChangeCallbacksInit } from '../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { INTERFACE_TYPE_GUID, MsgType, decodeHeader, encodeCompletion, isIntact, statusFor } from '../../../devices/sample/protocol.ts';
import { channelInstance } from '../../../devices/sample/control.ts';
import { SAMPLE_IOCTL } from '../../../devices/sample/c/control.ts';
import { CGuestWindows } from '../../../devices/sample/c/guest-windows.ts';
import { stepSide } from '../../vmbus/support/channel-pair.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe.skipIf(!toolchain)('the C Windows guest driver on the emulator', () => {
  it('opens the offered channel and sends Requests that the host completes', () => {
    const h = makeGuestHarness();
    h.pump();
    h.guest.run('send 3 64 0 0');
    h.pump();
    const trace = h.guest.readTrace();
    expect(trace.filter((e) => e.ev === 'ch.state').map((e) => e.state)).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
    expect(trace.filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(trace.filter((e) => e.ev === 'pkt.completion').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(h.guest.counters()[0]).toMatchObject({ ch: 42, requests_sent: 3, completions: 3, completion_mismatch: 0 });
  });

  it('reads the size of its trace buffer from its Parameters key (TraceKiB): a full buffer drops lines and counts them', () => {
    const small = makeGuestHarness({ traceKib: 1 });
    small.pump();
    small.guest.run('send 20 64 0 0');
    small.pump();
    expect(small.guest.counters()[0]!.trace_dropped).toBeGreaterThan(0);
    const big = makeGuestHarness({ traceKib: 64 });
    big.pump();
    big.guest.run('send 20 64 0 0');
    big.pump();
    expect(big.guest.counters()[0]!.trace_dropped).toBe(0);
  });

  it('holds a HostTransaction for its time, then completes it', () => {
    const h = makeGuestHarness();
    h.pump();
    h.hostTransaction(1, 64, 20);
    h.pump();
    // The host's packet awaits its completion until the guest's timer finds it due.
    expect(h.server.awaiting.size).toBe(1);
    h.advance(30);
    expect(h.server.awaiting.size).toBe(0);
    const trace = h.guest.readTrace();
    expect(trace.filter((e) => e.ev === 'pkt.complete').map((e) => e.tx)).toEqual([1]);
  });
});

/**
 * The driver with several channels: PnP adds one device per offer (no device at load),
 * each offer's host a bare server Channel that completes what it is stepped for.
 */
function multiChannel(channels: readonly number[]) {
  const clock = { now: 0 };
  const choices = { ...DEFAULT_CHOICES };
  const mem = new GuestMemory(channels.map((ch) => ({ ch, g2hPages: 4, h2gPages: 4 })));
  let waiting: Channel | null = null;
  const guest = new CGuestWindows({ choices, sink: new MemorySink(), now: () => clock.now, onEnabled: (c) => (waiting = c), devicesAtLoad: 0 });
  const servers = new Map<number, Channel>();
  const clients = new Map<number, Channel>();
  const devices = new Map<number, number>();
  /** PnP adds the channel's device, and the offer binds its client (Opened, Started, Active). */
  const offer = (ch: number): void => {
    const server = new Channel(true, ch, choices);
    server.initSetStateChangeCallbacks(stateChangeCallbacksInit());
    server.initSetProcessPacketCallbacks((c, pkt, buf) => {
      const h = decodeHeader(buf);
      if (h && h.type === MsgType.Request) c.packetComplete(pkt, encodeCompletion(buf, h, statusFor(h.tx, isIntact(buf, h))));
      else c.packetComplete(pkt, null);
    });
    server.serverInitSetTargetInterfaceId(INTERFACE_TYPE_GUID, channelInstance(ch));
    server.enable();
    server.start();
    waiting = null;
    devices.set(ch, guest.addDevice());
    const c = waiting as Channel | null;
    if (!c) throw new Error('the device enabled no client channel');
    c.config.interfaceInstance = channelInstance(ch);
    server.signalPeer = (w) => (w === 'interrupt' ? (c.interrupt = true) : (c.writable = true));
    c.signalPeer = (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true));
    for (const r of [mem.g2h(ch), mem.h2g(ch)]) r.initialize();
    const hr = mem.hostRings(ch);
    const gr = mem.guestRings(ch);
    server.connectionOpened(hr.out, hr.in, { restored: false });
    c.connectionOpened(gr.out, gr.in, { restored: false });
    servers.set(ch, server);
    clients.set(ch, c);
  };
  for (const ch of channels) offer(ch);
  const pump = (): void => {
    let n = 0;
    const busy = (): boolean => [...servers.values(), ...clients.values()].some((c) => stepSide(c)) || guest.runWorkItems() > 0;
    while (busy()) if (++n > 100_000) throw new Error('pump did not settle');
  };
  /** PnP removes the channel's device, as a rescind does on Windows; its host end goes too. */
  const remove = (ch: number): void => {
    guest.removeDevice(devices.get(ch)!);
    devices.delete(ch);
    clients.delete(ch);
    servers.delete(ch);
  };
  return { guest, clock, servers, clients, offer, pump, remove };
}

const STATUS_NOT_FOUND = 0xc0000225;
const STATUS_OBJECT_NAME_NOT_FOUND = 0xc0000034;

describe.skipIf(!toolchain)('the C Windows guest driver with several channels', () => {
  it('has one device per channel behind one control device: ch=N reaches that channel\'s device, no ch every device, an unknown one none', () => {
    const m = multiChannel([0, 1, 2]);
    m.pump();
    m.guest.run('send 2 64 0 0 ch=1');
    m.guest.run('notify 1 64 ch=2');
    m.guest.run('send 1 64 0 0');
    expect(m.guest.command('send 1 64 0 0 ch=7')).toBe(STATUS_NOT_FOUND);
    m.pump();
    const trace = m.guest.readTrace();
    const sends = (ch: number) => trace.filter((e) => e.ev === 'pkt.send' && e.ch === ch).map((e) => e.tx);
    expect([sends(0), sends(1), sends(2)]).toEqual([[1], [1, 2, 3], [1, 2]]);
    expect(trace.filter((e) => e.ev === 'pkt.completion').length).toBe(5);
    // One counters line per channel, each with the driver's trace numbers.
    const rows = m.guest.counters();
    expect(rows.map((r) => [r.ch, r.requests_sent, r.notifies_sent, r.completions])).toEqual([[0, 1, 0, 1], [1, 3, 0, 3], [2, 1, 1, 1]]);
    expect(new Set(rows.map((r) => r.trace_seq)).size).toBe(1);
    m.guest.unload();
  });

  it('a removed device\'s end stays in the driver\'s trace: its requests in flight cancelled, and its channel\'s next device numbers on', () => {
    const m = multiChannel([0, 1]);
    m.pump();
    m.guest.run('send 2 64 0 0 ch=1');
    // The host never takes them: they await their completions when the offer is rescinded.
    m.remove(1);
    const gone = m.guest.readTrace().filter((e) => e.ch === 1).map((e) => (e.ev === 'ch.state' ? e.state : `${String(e.ev)} ${String(e.tx)}`));
    expect(gone).toEqual(['Enabled', 'Opened', 'Started', 'Active', 'pkt.send 1', 'pkt.send 2', 'Paused', 'Closed', 'pkt.cancel 1', 'pkt.cancel 2']);
    expect(m.guest.command('send 1 64 0 0 ch=1')).toBe(STATUS_NOT_FOUND);
    expect(m.guest.counters().map((r) => r.ch)).toEqual([0]);
    m.offer(1);
    m.pump();
    m.guest.run('send 1 64 0 0 ch=1');
    m.pump();
    const again = m.guest.readTrace().filter((e) => e.ch === 1 && (e.ev === 'pkt.send' || e.ev === 'pkt.completion')).map((e) => `${String(e.ev)} ${String(e.tx)}`);
    expect(again).toEqual(['pkt.send 1', 'pkt.send 2', 'pkt.send 3', 'pkt.completion 3']);
    m.guest.unload();
  });

  it('the last device takes the control device with it; the next brings it back, with the trace kept meanwhile', () => {
    const m = multiChannel([5]);
    m.pump();
    m.guest.run('send 1 64 0 0 ch=5');
    m.pump();
    m.remove(5);
    // No device, so no \\.\VmbusSampleGuest to open.
    expect(m.guest.ioctl(SAMPLE_IOCTL.counters, new Uint8Array(0), 4096).status).toBe(STATUS_OBJECT_NAME_NOT_FOUND);
    m.offer(5);
    const states = m.guest.readTrace().filter((e) => e.ev === 'ch.state').map((e) => e.state);
    expect(states).toEqual(['Enabled', 'Opened', 'Started', 'Active', 'Paused', 'Closed', 'Enabled', 'Opened', 'Started', 'Active']);
    // Driver Verifier's unload checks: nothing leaked, the control device deleted.
    m.guest.unload();
  });
});
