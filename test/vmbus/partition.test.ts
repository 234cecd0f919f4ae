// Guest memory (src/vmbus/partition.ts): every channel's two rings live in one shared
// buffer, the host and guest views are two ends of the same rings, and an image of the
// memory rebuilds the same rings (which is how a saved VM carries its in-flight packets).

import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { ControlWord, FEATURE_SUPPORTS_PENDING_SEND_SIZE, PacketType, ringBytes } from '../../src/vmbus/ring-layout.ts';

const LAYOUT = [
  { ch: 1, g2hPages: 1, h2gPages: 2 },
  { ch: 7, g2hPages: 3, h2gPages: 1 },
];

describe('GuestMemory', () => {
  it('lays the rings out back to back, guest->host first, each a control page plus its data pages', () => {
    const mem = new GuestMemory(LAYOUT);
    expect(mem.slots).toEqual([
      { ch: 1, g2hOffset: 0, g2hPages: 1, h2gOffset: ringBytes(1), h2gPages: 2 },
      { ch: 7, g2hOffset: ringBytes(1) + ringBytes(2), g2hPages: 3, h2gOffset: ringBytes(1) + ringBytes(2) + ringBytes(3), h2gPages: 1 },
    ]);
    expect(mem.buffer.byteLength).toBe(ringBytes(1) + ringBytes(2) + ringBytes(3) + ringBytes(1));
  });

  it('starts every ring empty with the pending-send-size feature bit set', () => {
    const mem = new GuestMemory(LAYOUT);
    for (const { ch } of LAYOUT) {
      for (const r of [mem.g2h(ch), mem.h2g(ch)]) {
        expect(r.load(ControlWord.writeIndex)).toBe(0);
        expect(r.load(ControlWord.readIndex)).toBe(0);
        expect(r.load(ControlWord.featureBits) & FEATURE_SUPPORTS_PENDING_SEND_SIZE).toBe(1);
      }
    }
  });

  it('connects the guest\'s outgoing ring to the host\'s incoming ring and back, per channel', () => {
    const mem = new GuestMemory(LAYOUT);
    const guest = mem.guestRings(7);
    const host = mem.hostRings(7);
    guest.out.tryWrite(PacketType.dataInBand, 0, 11, new Uint8Array([1]));
    guest.out.commit();
    host.out.tryWrite(PacketType.completion, 0, 22, new Uint8Array([2]));
    host.out.commit();
    expect(host.in.peek()?.transId).toBe(11);
    expect(guest.in.peek()?.transId).toBe(22);
    // Channel 1 saw nothing.
    expect(mem.hostRings(1).in.peek()).toBeNull();
    expect(mem.guestRings(1).in.peek()).toBeNull();
  });

  it('rebuilds the same rings from an image, packets included', () => {
    const mem = new GuestMemory(LAYOUT);
    const g = mem.guestRings(1);
    g.out.tryWrite(PacketType.dataInBand, 1, 99, new Uint8Array([5, 6, 7]));
    g.out.commit();
    const copy = new GuestMemory(LAYOUT, mem.image());
    expect(copy.image()).toEqual(mem.image());
    const v = copy.hostRings(1).in.peek()!;
    expect([v.transId, v.flags]).toEqual([99, 1]);
    // The image is a copy: later writes to the original do not leak into it.
    g.out.tryWrite(PacketType.dataInBand, 0, 100, new Uint8Array(8));
    g.out.commit();
    expect(copy.g2h(1).load(ControlWord.writeIndex)).not.toBe(mem.g2h(1).load(ControlWord.writeIndex));
  });

  it('dumps one ring as its raw bytes', () => {
    const mem = new GuestMemory(LAYOUT);
    const dump = mem.ringImage(7, 'g2h');
    expect(dump.length).toBe(ringBytes(3));
    expect(new DataView(dump.buffer).getUint32(0x40, true)).toBe(FEATURE_SUPPORTS_PENDING_SEND_SIZE);
  });

  it('refuses an image of the wrong size and an unknown channel', () => {
    expect(() => new GuestMemory(LAYOUT, new Uint8Array(4096))).toThrow(RangeError);
    expect(() => new GuestMemory(LAYOUT).hostRings(2)).toThrow(/no rings for channel 2/);
  });
});
