// A guest twin's ring I/O (src/device-api/guest-channel-io.ts), against a host end played
// here on the other side of the same ring memory: what the guest writes reaches the host
// once and in order even when the ring fills and the guest waits for room, and every
// packet the host writes is handed to the twin's protocol once, in order, with no packet
// left behind a signal that never comes.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fifo, fifoLength } from '../../src/vmbus/fifo.ts';
import { ControlWord, PACKET_FLAG_COMPLETION_REQUESTED, PacketType, inBandFootprint, ringBytes } from '../../src/vmbus/ring-layout.ts';
import { IncomingRing, OutgoingRing, RingMemory } from '../../src/vmbus/ring.ts';
import type { EventBody } from '../../src/trace/schema.ts';
import {
  abandonQueuedSends, canDeliver, canFlush, deliverOne, flushOne, hostSignalled, traceUnacceptable, writeOrQueue, type GuestChannelIo, type GuestReceiver, type QueuedWrite,
} from '../../src/device-api/guest-channel-io.ts';

/** One ring: its memory, the writer's end and the reader's end. */
function ring(dataPages = 1): { mem: RingMemory; out: OutgoingRing; inc: IncomingRing } {
  const mem = new RingMemory(new SharedArrayBuffer(ringBytes(dataPages)), 0, dataPages);
  mem.initialize();
  return { mem, out: new OutgoingRing(mem), inc: new IncomingRing(mem) };
}

const channel = (): GuestChannelIo => ({ ch: 3, queue: fifo<QueuedWrite>(), interrupt: true, draining: false, writable: true });

/** A payload whose first bytes number it, so order and identity can be read back. */
function numbered(n: number, size: number): Uint8Array {
  const b = new Uint8Array(Math.max(size, 4));
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
const numberOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset).getUint32(0, true);

/** The host's doorbell as the guest rings it: counts, per kind. */
function doorbell() {
  const rung = { interrupt: 0, writable: 0 };
  return { rung, host: { interrupt: () => void rung.interrupt++, writable: () => void rung.writable++ } };
}

describe('sending: writeOrQueue and flushOne', () => {
  it('the host reads every packet once, in the order written, however full the ring gets; a queued packet advertises the room it needs', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ write: fc.integer({ min: 1, max: 1500 }) }), fc.record({ hostReads: fc.integer({ min: 0, max: 6 }) })), { maxLength: 60 }),
        (steps) => {
          const g2h = ring(1);
          const c = channel();
          const { host } = doorbell();
          const got: number[] = [];
          let written = 0;
          const hostRead = (max: number): void => {
            for (let i = 0; i < max; i++) {
              const v = g2h.inc.peek();
              if (!v) break;
              got.push(numberOf(g2h.inc.payload(v)));
              g2h.inc.advance(v);
              // The host signals writable when its read frees the room the guest advertised.
              if (g2h.inc.commit()) hostSignalled(c, 'writable');
            }
          };
          const flush = (): void => {
            while (canFlush(c)) {
              const before = fifoLength(c.queue);
              flushOne(c, g2h.out, host);
              if (fifoLength(c.queue) === before) break; // still no room: it advertised again
            }
          };
          for (const s of steps) {
            if ('write' in s) {
              const queued = writeOrQueue(c, g2h.out, host, PACKET_FLAG_COMPLETION_REQUESTED, PacketType.dataInBand, written, numbered(written, s.write));
              written++;
              expect(queued).toBe(fifoLength(c.queue) > 0);
            } else {
              hostRead(s.hostReads);
              flush();
            }
            // Invariant: while something waits and no room was signalled, the ring says how much the head needs.
            if (fifoLength(c.queue) > 0 && !c.writable) {
              expect(g2h.mem.load(ControlWord.pendingSendSize)).toBe(inBandFootprint(c.queue.items[c.queue.head]!.payload.length));
            }
          }
          // The host drains; every wake-up the guest needs comes, so nothing stays queued.
          for (let guard = 0; guard < 1000 && (fifoLength(c.queue) > 0 || !g2h.inc.isEmpty()); guard++) {
            hostRead(Infinity);
            flush();
          }
          expect(got).toEqual([...Array(written).keys()]);
          expect(fifoLength(c.queue)).toBe(0);
          expect(g2h.mem.load(ControlWord.pendingSendSize)).toBe(0);
        },
      ),
    );
  });

  it('rings the host only when the ring goes from empty to not empty', () => {
    const g2h = ring(1);
    const c = channel();
    const { rung, host } = doorbell();
    writeOrQueue(c, g2h.out, host, 0, PacketType.dataInBand, 1, numbered(1, 64));
    writeOrQueue(c, g2h.out, host, 0, PacketType.dataInBand, 2, numbered(2, 64));
    expect(rung.interrupt).toBe(1);
  });
});

describe('receiving: canDeliver and deliverOne', () => {
  type Seen = { kind: 'completion' | 'message'; transId: number; wants: boolean; n: number };
  const receiverInto = (seen: Seen[]): GuestReceiver<GuestChannelIo> => ({
    completion: (_c, transId, payload) => void seen.push({ kind: 'completion', transId: Number(transId), wants: false, n: numberOf(payload) }),
    message: (_c, transId, wants, payload) => void seen.push({ kind: 'message', transId: Number(transId), wants, n: numberOf(payload) }),
  });

  it('hands every packet the host writes to the receiver once, in order, and leaves none in the ring when it stops', () => {
    const packet = fc.record({ kind: fc.constantFrom('completion', 'message'), wants: fc.boolean(), size: fc.integer({ min: 4, max: 700 }) });
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.record({ hostWrites: fc.array(packet, { maxLength: 4 }) }), fc.record({ guestTurns: fc.integer({ min: 0, max: 5 }) })), { maxLength: 50 }), (steps) => {
        const h2g = ring(2);
        const c = channel();
        const { host } = doorbell();
        const seen: Seen[] = [];
        const sent: Seen[] = [];
        const receiver = receiverInto(seen);
        const turn = (): void => {
          deliverOne(c, h2g.inc, host, 0, receiver);
          // Invariant: the host's interrupts are masked exactly while the guest drains.
          expect(h2g.mem.load(ControlWord.interruptMask)).toBe(c.draining ? 1 : 0);
        };
        for (const s of steps) {
          if ('hostWrites' in s) {
            for (const p of s.hostWrites) {
              const n = sent.length;
              const type = p.kind === 'completion' ? PacketType.completion : PacketType.dataInBand;
              const flags = p.kind === 'message' && p.wants ? PACKET_FLAG_COMPLETION_REQUESTED : 0;
              if (!h2g.out.tryWrite(type, flags, 100 + n, numbered(n, p.size))) break; // full: the host writes later
              sent.push({ kind: p.kind, transId: 100 + n, wants: flags !== 0, n });
              // The host signals as its commit says (empty -> not empty, interrupts not masked).
              if (h2g.out.commit()) hostSignalled(c, 'interrupt');
            }
          } else {
            for (let i = 0; i < s.guestTurns && canDeliver(c, h2g.inc); i++) turn();
          }
        }
        while (canDeliver(c, h2g.inc)) turn();
        expect(seen).toEqual(sent);
        expect(h2g.inc.isEmpty()).toBe(true);
        expect(c.draining).toBe(false);
      }),
    );
  });

  it('waits for a signal: nothing is delivered until the host interrupts (or the driver looks once after opening)', () => {
    const h2g = ring(1);
    const c = { ...channel(), interrupt: false };
    h2g.out.tryWrite(PacketType.dataInBand, 0, 1, numbered(1, 8));
    h2g.out.commit();
    expect(canDeliver(c, h2g.inc)).toBe(false);
    hostSignalled(c, 'interrupt');
    expect(canDeliver(c, h2g.inc)).toBe(true);
  });

  it('rings writable when its read frees the room the blocked host asked for', () => {
    const h2g = ring(1);
    const c = channel();
    const { rung, host } = doorbell();
    const size = 1000;
    while (h2g.out.tryWrite(PacketType.dataInBand, 0, 1, numbered(1, size)));
    h2g.out.commit();
    h2g.out.setPendingSendSize(inBandFootprint(size));
    const seen: Seen[] = [];
    deliverOne(c, h2g.inc, host, 0, receiverInto(seen));
    expect(seen).toHaveLength(1);
    expect(rung.writable).toBe(1);
  });

  it('steps over a packet of unknown type, names it in the trace, and frees its room', () => {
    const h2g = ring(1);
    const c = channel();
    const { rung, host } = doorbell();
    const events: EventBody[] = [];
    traceUnacceptable(h2g.inc, c.ch, { emit: (e) => void events.push(e) });
    // A full ring of them, and the host blocked on room for one more.
    let n = 0;
    while (h2g.out.tryWrite(0x99, 0, 7, numbered(7, 1000))) n++;
    h2g.out.commit();
    h2g.out.setPendingSendSize(inBandFootprint(1000));
    const seen: Seen[] = [];
    deliverOne(c, h2g.inc, host, 0, receiverInto(seen));
    expect(seen).toEqual([]);
    expect(events).toHaveLength(n);
    expect(events[0]).toEqual({ side: 'guest', ev: 'ring.format', ch: 3, dir: 'h2g', offset: 0, type: 0x99, flags: 0 });
    expect(rung.writable).toBe(1);
    expect(c.draining).toBe(false);
  });
});

describe('giving up queued sends: abandonQueuedSends', () => {
  it('property: takes out exactly the queued sends, gives back their ids and forgets them, keeps the queued completions in order, and advertises the room the new head needs (none when empty)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ completion: fc.boolean(), size: fc.integer({ min: 1, max: 3000 }) }), { maxLength: 40 }), (writes) => {
        const g2h = ring(1);
        const c = { ...channel(), nextTx: 1, nextTransId: 1, awaiting: new Map<number | bigint, number | bigint>() };
        const { host } = doorbell();
        for (const [n, w] of writes.entries()) {
          // A send takes the next ids and awaits its completion; a completion answers the host's transaction 1000 + n.
          const transId = w.completion ? 1000 + n : c.nextTransId;
          if (!w.completion) {
            c.awaiting.set(transId, c.nextTx);
            c.nextTx++;
            c.nextTransId++;
          }
          writeOrQueue(c, g2h.out, host, w.completion ? 0 : PACKET_FLAG_COMPLETION_REQUESTED, w.completion ? PacketType.completion : PacketType.dataInBand, transId, numbered(n, w.size));
        }
        const queued = c.queue.items.slice(c.queue.head);
        const sends = queued.filter((q) => q.type === PacketType.dataInBand);
        const before = { nextTx: c.nextTx, awaiting: c.awaiting.size };
        expect(abandonQueuedSends(c, g2h.out)).toBe(sends.length);
        // Their ids go back (the next send reuses the first given up), and none is awaited.
        expect(c.nextTx).toBe(before.nextTx - sends.length);
        expect(c.nextTransId).toBe(c.nextTx);
        expect(c.awaiting.size).toBe(before.awaiting - sends.length);
        for (const q of sends) expect(c.awaiting.has(q.transId)).toBe(false);
        const kept = c.queue.items.slice(c.queue.head);
        expect(kept).toEqual(queued.filter((q) => q.type === PacketType.completion));
        expect(g2h.mem.load(ControlWord.pendingSendSize)).toBe(kept.length > 0 ? inBandFootprint(kept[0]!.payload.length) : 0);
      }),
    );
  });
});
