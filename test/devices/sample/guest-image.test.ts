// The guest driver's saved image (devices/sample/guest-image.ts): whatever the guest holds
// when the VM is saved (queued writes, held transactions, transactions awaiting the
// host) comes back from the blob as it was, holds keeping the time they had left; and an
// image as format version 1 wrote it (the live state itself) still revives.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newGuestState, reviveGuest, snapshotGuest, type GuestState } from '../../../devices/sample/guest.ts';
import { fifoItems, fifoPush, fifoShift } from '../../../src/vmbus/fifo.ts';
import { decodeSavedVm, encodeSavedVm } from '../../../src/vmbus/saved-state.ts';
import { ringBytes } from '../../../src/vmbus/ring-layout.ts';

const bytes = fc.uint8Array({ maxLength: 80 });
const queued = fc.record({ flags: fc.constantFrom(0, 1), type: fc.constantFrom(6, 11), transId: fc.nat(), payload: bytes });
const held = fc.record({ transId: fc.nat(), tx: fc.nat(), due: fc.nat(5000), response: bytes, status: fc.constantFrom(0, 0xc0000184) });
const channel = fc.record({
  ch: fc.nat(64),
  nextTx: fc.nat(),
  nextTransId: fc.nat(),
  queue: fc.array(queued, { maxLength: 8 }),
  held: fc.array(held, { maxLength: 8 }),
  awaiting: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 8 }),
  writable: fc.boolean(),
  consumed: fc.nat(3),
});

/** A live state with these contents; `consumed` entries were taken off each queue first. */
type ChannelSpec = typeof channel extends fc.Arbitrary<infer T> ? T : never;

function liveState(spec: ChannelSpec[]): GuestState {
  const state = newGuestState(spec.map((c) => c.ch));
  spec.forEach((c, i) => {
    const s = state.channels[i]!;
    s.nextTx = c.nextTx;
    s.nextTransId = c.nextTransId;
    s.writable = c.writable;
    s.interrupt = false;
    s.draining = true;
    for (const [k, v] of c.awaiting) s.awaiting.set(k, v);
    const dummy = { flags: 0, type: 6, transId: 0, payload: new Uint8Array(0) };
    for (let n = 0; n < c.consumed; n++) fifoPush(s.queue, dummy);
    for (const q of c.queue) fifoPush(s.queue, { ...q });
    for (let n = 0; n < c.consumed; n++) fifoShift(s.queue);
    for (const h of c.held) fifoPush(s.held, { ...h });
  });
  return state;
}

/** What a guest channel holds, comparable whatever the fifo's internal head. */
function contents(state: GuestState) {
  return state.channels.map((c) => ({
    ch: c.ch, nextTx: c.nextTx, nextTransId: c.nextTransId, writable: c.writable, interrupt: c.interrupt, draining: c.draining,
    awaiting: [...c.awaiting], queue: fifoItems(c.queue).map((q) => ({ ...q, payload: [...q.payload] })),
    held: fifoItems(c.held).map((h) => ({ ...h, response: [...h.response] })),
  }));
}

/** The guest image through a saved VM whose layout and host side hold the guest's channels (decodeSavedVm checks they agree). */
function throughBlob(guest: unknown): unknown {
  const chs = ((guest as { channels: { ch: number }[] }).channels).map((c) => c.ch);
  const layout = chs.map((ch) => ({ ch, g2hPages: 1, h2gPages: 1 }));
  const memory = new Uint8Array(chs.length * 2 * ringBytes(1));
  const channels = chs.map((ch) => ({ ch, kmclBuffers: [new Uint8Array(0)] }));
  return decodeSavedVm(encodeSavedVm({ v: 1, kind: 'vm', layout, memory, guest, channels, bench: { nextHostTx: {} } })).guest;
}

describe('guest image', () => {
  it('brings back every queued write, held transaction and awaited request through a saved blob, holds shifted by the time away', () => {
    fc.assert(
      fc.property(fc.uniqueArray(channel, { maxLength: 3, selector: (c) => c.ch }), fc.nat(1000), fc.nat(1000), (spec, takenAt, away) => {
        const before = contents(liveState(spec));
        const revived = reviveGuest(throughBlob(snapshotGuest(liveState(spec), takenAt)), takenAt + away);
        const expected = before.map((c) => ({ ...c, interrupt: true, draining: false, held: c.held.map((h) => ({ ...h, due: h.due + away })) }));
        expect(contents(revived)).toEqual(expected);
        expect(revived.takenAt).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('revives an image as format version 1 wrote it: the live state itself', () => {
    fc.assert(
      fc.property(fc.uniqueArray(channel, { maxLength: 3, selector: (c) => c.ch }), fc.nat(1000), fc.nat(1000), (spec, takenAt, away) => {
        const before = contents(liveState(spec));
        const v1Image = { ...liveState(spec), takenAt };
        const revived = reviveGuest(throughBlob(v1Image), takenAt + away);
        const expected = before.map((c) => ({ ...c, interrupt: true, draining: false, held: c.held.map((h) => ({ ...h, due: h.due + away })) }));
        expect(contents(revived)).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });

  it('shares nothing with the live state but through the blob: changing the guest after a save does not change the image', () => {
    const state = liveState([{ ch: 0, nextTx: 5, nextTransId: 9, queue: [{ flags: 1, type: 6, transId: 3, payload: new Uint8Array([1, 2, 3]) }], held: [{ transId: 4, tx: 2, due: 10, response: new Uint8Array([7]), status: 0 }], awaiting: [[8, 4]], writable: true, consumed: 0 }]);
    const image = snapshotGuest(state, 0);
    fifoItems(state.channels[0]!.queue)[0]!.payload[0] = 99;
    fifoItems(state.channels[0]!.held)[0]!.response[0] = 99;
    state.channels[0]!.awaiting.set(99, 1);
    const revived = reviveGuest(throughBlob(image), 0);
    expect([...fifoItems(revived.channels[0]!.queue)[0]!.payload]).toEqual([1, 2, 3]);
    expect([...fifoItems(revived.channels[0]!.held)[0]!.response]).toEqual([7]);
    expect([...revived.channels[0]!.awaiting]).toEqual([[8, 4]]);
  });

  it('refuses an image whose columns do not hold what it counts, as a bad record', () => {
    const state = liveState([{ ch: 0, nextTx: 5, nextTransId: 9, queue: [], held: [{ transId: 4, tx: 2, due: 10, response: new Uint8Array([7]), status: 0 }], awaiting: [[8, 4]], writable: true, consumed: 0 }]);
    const image = snapshotGuest(state, 0);
    const c = image.channels[0]!;
    for (const bad of [{ ...c, held: 2 }, { ...c, numbers: c.numbers.subarray(1) }, { ...c, bytes: new Uint8Array(0) }]) {
      expect(() => reviveGuest(throughBlob({ ...image, channels: [bad] }), 0)).toThrow(expect.objectContaining({ name: 'RestoreError', code: 'bad-record' }) as Error);
    }
  });
});
