// The sample guest twin at a rescind (lab/drivers/PROTOCOL.md, "Rescind and re-offer"): it
// closes the channel, ends each of its requests in flight once with STATUS_CANCELLED
// (those in the ring and those queued behind a full one), drops what it held, reads
// nothing more from the old rings, and opens the new instance with its ids going on.
import { describe, expect, it } from 'vitest';
import { SampleGuest, newGuestState } from '../../../devices/sample/guest.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { PacketType } from '../../../src/vmbus/ring-layout.ts';
import { encodeMessage, MsgType } from '../../../devices/sample/protocol.ts';

type Ev = { ev: string; side: string; ch: number; tx?: number; dir?: string; status?: string; state?: string };

function guest() {
  const memory = new GuestMemory([{ ch: 0, g2hPages: 1, h2gPages: 1 }]);
  const sink = new MemorySink('emulator');
  const g = new SampleGuest(newGuestState([0]), new Map([[0, memory.guestRings(0)]]), sink, { interrupt: () => {}, writable: () => {} });
  return { memory, sink, g };
}

describe('the sample guest twin at a rescind', () => {
  it('cancels every request in flight once, queued ones included, in the order sent, and never sends them again', () => {
    const { memory, sink, g } = guest();
    // 30 requests of 400 bytes: the one-page ring holds some, the rest are queued.
    g.send(0, 'request', 30, 400, 'inline', 0);
    expect(g.canFlush(0) || g.pending() > 0).toBe(true);
    expect(sink.events.some((e) => e.ev === 'pkt.queued')).toBe(true);
    const before = sink.events.length;
    g.rescind(0);
    const after = sink.events.slice(before) as Ev[];
    expect(after[0]).toMatchObject({ side: 'guest', ev: 'ch.state', ch: 0, state: 'Closed' });
    const cancels = after.slice(1);
    expect(cancels.every((e) => e.ev === 'pkt.cancel' && e.dir === 'g2h' && e.status === 'c0000120')).toBe(true);
    expect(cancels.map((e) => e.tx)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(g.pending()).toBe(0);
    memory.g2h(0).initialize();
    memory.h2g(0).initialize();
    g.reopen(0, memory.guestRings(0));
    expect((sink.events.slice(-2) as Ev[]).map((e) => e.state)).toEqual(['Opened', 'Active']);
    // Nothing of the old instance is flushed into the new rings; the next request is tx 31.
    expect(g.canFlush(0)).toBe(false);
    g.send(0, 'request', 1, 64, 'inline', 0);
    expect((sink.events.at(-1) as Ev)).toMatchObject({ ev: 'pkt.send', tx: 31 });
  });

  it('drops the host transactions it held: none is completed after the re-offer', () => {
    const { memory, sink, g } = guest();
    // The host writes a HostTransaction the guest is to hold for 50 ms.
    const host = memory.hostRings(0);
    expect(host.out.tryWrite(PacketType.dataInBand, 1, 7, encodeMessage(MsgType.HostTransaction, 1, 64, 50))).toBe(true);
    host.out.commit();
    g.signal(0, 'interrupt');
    g.deliverOne(0, 0);
    expect(g.nextDue(0)).toBe(50);
    g.rescind(0);
    memory.g2h(0).initialize();
    memory.h2g(0).initialize();
    g.reopen(0, memory.guestRings(0));
    expect(g.nextDue(0)).toBeNull();
    expect(g.completeDue(0, 100)).toBe(false);
    expect(sink.events.some((e) => e.ev === 'pkt.complete')).toBe(false);
    // It had no request of its own in flight: nothing to cancel.
    expect(sink.events.some((e) => e.ev === 'pkt.cancel')).toBe(false);
  });
});
