// A VSP twin's server channel helpers (src/device-api/server-channel.ts), with a minimal
// VSP of this file's own (no device's protocol): the channel's state changes reach the
// VSP to trace, in order, with Paused before its Suspend work; a failing KMCL call throws
// the device's own error naming the call; and what a save hands out, in buffers of any
// size, a restore on a new channel brings back, every packet once, in order.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Channel } from '../../src/vmbus/channel.ts';
import { packetRestore } from '../../src/vmbus/channel-save.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { FORMAT_FLAG_WAIT_FOR_COMPLETION, type IncomingPacket, type VmbPacket } from '../../src/vmbus/packet.ts';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { STATUS, type NtStatus } from '../../src/vmbus/status.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { Faults, NO_FAULTS } from '../../src/vmbus/faults.ts';
import { KmclUsageError } from '../../src/vmbus/channel-types.ts';
import {
  createServerChannel, enableServerChannel, restoreServerChannel, saveServerChannel, type ServerChannelOptions, type ServerVspCallbacks,
} from '../../src/device-api/server-channel.ts';
import { IFACE_TYPE, stepSide, wire } from '../vmbus/support/channel-pair.ts';

class DeviceFailure extends Error {}
const fail = (message: string): Error => new DeviceFailure(`test VSP: ${message}`);

/** A VSP that logs its callbacks, completes each guest packet at once, and saves a record of `recordSize` bytes per host transaction. */
class LoggingVsp implements ServerVspCallbacks {
  readonly log: string[] = [];
  readonly restored: number[] = [];
  channel!: Channel;
  private readonly recordSize: number;
  constructor(recordSize = 8) {
    this.recordSize = recordSize;
  }
  state(state: string): void {
    this.log.push(state);
  }
  onPacket(pkt: IncomingPacket, buf: Uint8Array): void {
    this.log.push(`packet:${buf[0]}`);
    this.channel.packetComplete(pkt, null);
  }
  onSuspend(): void {
    this.log.push('suspend');
  }
  onSavePacket(p: VmbPacket, buf: Uint8Array | null, out: { bytesNeeded: number }): NtStatus {
    if (buf === null || buf.length < this.recordSize) {
      out.bytesNeeded = this.recordSize;
      return STATUS.BUFFER_TOO_SMALL;
    }
    new DataView(buf.buffer, buf.byteOffset).setUint32(0, p.pointer as number, true);
    return STATUS.SUCCESS;
  }
  onRestorePacket(lib: Uint8Array, save: Uint8Array): NtStatus {
    const p = this.channel.packetAllocate();
    const st = packetRestore(p, lib);
    if (st !== STATUS.SUCCESS) return st;
    p.pointer = new DataView(save.buffer, save.byteOffset).getUint32(0, true);
    this.restored.push(p.pointer as number);
    return STATUS.SUCCESS;
  }
}

const OPTIONS: ServerChannelOptions = {
  ch: 0, instance: '00000000-0000-0000-0000-000000000001', choices: DEFAULT_CHOICES, sink: new MemorySink('emulator'),
  interfaceType: IFACE_TYPE, maxPacketSize: 4096, fail,
};

function server(vsp: LoggingVsp, o: Partial<ServerChannelOptions> = {}): Channel {
  vsp.channel = createServerChannel({ ...OPTIONS, ...o }, vsp);
  return vsp.channel;
}

/** The guest's end: a client channel that holds every packet the host sends (never completes them). */
function guestOn(mem: GuestMemory): Channel {
  const client = new Channel(false, 0, DEFAULT_CHOICES);
  expect(client.initSetProcessPacketCallbacks(() => {})).toBe(STATUS.SUCCESS);
  expect(client.clientInitSetTargetPnp(IFACE_TYPE, null)).toBe(STATUS.SUCCESS);
  expect(client.enable()).toBe(STATUS.SUCCESS);
  const g = mem.guestRings(0);
  client.connectionOpened(g.out, g.in, { restored: false });
  return client;
}

function connect(vsp: LoggingVsp, mem: GuestMemory): { host: Channel; guest: Channel; pump: () => void } {
  const host = vsp.channel;
  enableServerChannel(host, vsp, fail);
  const guest = guestOn(mem);
  wire(host, guest);
  const h = mem.hostRings(0);
  host.connectionOpened(h.out, h.in, { restored: false });
  const pump = (): void => {
    for (let n = 0; stepSide(host) || stepSide(guest); n++) if (n > 100_000) throw new Error('did not settle');
  };
  pump();
  return { host, guest, pump };
}

describe('createServerChannel and enableServerChannel', () => {
  it('the VSP sees every state change in order (Enabled when offered), Paused before its Suspend work, and each guest packet', () => {
    const vsp = new LoggingVsp();
    server(vsp);
    const mem = new GuestMemory([{ ch: 0, g2hPages: 1, h2gPages: 1 }]);
    const { host, guest, pump } = connect(vsp, mem);
    guest.packetSend(guest.packetAllocate(), new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0]), 0);
    pump();
    host.pause();
    expect(vsp.log).toEqual(['Enabled', 'Opened', 'Started', 'Active', 'packet:7', 'Paused', 'suspend']);
  });

  it('sets the quota, the faults and the first descriptor id it is given, and traces KMCL misuse on the host side', () => {
    const sink = new MemorySink('emulator');
    const vsp = new LoggingVsp();
    const faults = new Faults(['unknown-packet-type']);
    const ch = server(vsp, { sink, quota: 3, faults, firstTransId: 1000 });
    expect({ quota: ch.quota, faults: ch.faults, nextTransId: ch.nextTransId }).toEqual({ quota: 3, faults, nextTransId: 1000 });
    expect(server(new LoggingVsp()).faults).toBe(NO_FAULTS);
    const p = ch.packetAllocate();
    ch.packetFree(p);
    expect(() => ch.packetFree(p)).toThrow(KmclUsageError);
    expect(sink.events).toEqual([expect.objectContaining({ side: 'host', ev: 'kmcl.violation', ch: 0, call: 'VmbPacketFree', rule: 'free-twice' })]);
  });

  it('a failing Init call throws the device\'s error, naming the call and the status', () => {
    expect(() => server(new LoggingVsp(), { maxPacketSize: 0 })).toThrow(new DeviceFailure('test VSP: VmbChannelInitSetMaximumPacketSize failed with STATUS_INVALID_PARAMETER_2'));
  });
});

describe('saveServerChannel and restoreServerChannel', () => {
  it('a save in buffers of any size, fed back to a new channel, restores every transaction in flight once, in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 4, max: 64 }).map((n) => n * 8), fc.integer({ min: 16, max: 4096 }), (count, recordSize, bufferSize) => {
        const vsp = new LoggingVsp(recordSize);
        server(vsp);
        const mem = new GuestMemory([{ ch: 0, g2hPages: 1, h2gPages: 1 }]);
        const { host, pump } = connect(vsp, mem);
        for (let tx = 1; tx <= count; tx++) {
          const p = host.packetAllocate();
          p.pointer = tx;
          expect(host.packetSend(p, new Uint8Array(200), FORMAT_FLAG_WAIT_FOR_COMPLETION)).toBe(STATUS.SUCCESS);
        }
        pump();
        const buffers = saveServerChannel(host, bufferSize, fail);
        // Each buffer was copied out of the one lent to every call: none is a view of another.
        expect(new Set(buffers.map((b) => b.buffer)).size).toBe(buffers.length);
        const again = new LoggingVsp(recordSize);
        server(again);
        restoreServerChannel(again.channel, buffers, fail);
        expect(again.restored).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      }),
      { numRuns: 40 },
    );
  });

  it('a restore short of its last buffer, or with none, throws the device\'s error and names the buffer', () => {
    const vsp = new LoggingVsp(2048);
    server(vsp);
    const { host, pump } = connect(vsp, new GuestMemory([{ ch: 0, g2hPages: 1, h2gPages: 1 }]));
    for (let tx = 1; tx <= 4; tx++) {
      const p = host.packetAllocate();
      p.pointer = tx;
      host.packetSend(p, new Uint8Array(64), FORMAT_FLAG_WAIT_FOR_COMPLETION);
    }
    pump();
    const buffers = saveServerChannel(host, 2200, fail);
    expect(buffers.length).toBeGreaterThan(2);
    const again = new LoggingVsp(2048);
    server(again);
    expect(() => restoreServerChannel(again.channel, buffers.slice(0, -1), fail)).toThrow(
      new DeviceFailure(`test VSP: VmbChannelRestoreFromBuffer returned STATUS_MORE_PROCESSING_REQUIRED for buffer ${buffers.length - 1} of ${buffers.length - 1}`),
    );
    const empty = new LoggingVsp();
    server(empty);
    expect(() => restoreServerChannel(empty.channel, [], fail)).toThrow(new DeviceFailure('test VSP: no saved buffers to restore from'));
  });
});
