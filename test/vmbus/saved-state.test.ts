// The saved VM record (src/vmbus/saved-state.ts): what encode writes, decode reads back;
// anything damaged, foreign or from another format version is refused with a RestoreError
// naming what is wrong; and a blob written by format version 1 (committed in
// test/fixtures/saved/vm-v1.bin, see make-vm-v1.ts there) stays readable.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Channel } from '../../src/vmbus/channel.ts';
import { channelRestoreFromBuffer, packetRestore } from '../../src/vmbus/channel-save.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { fifoItems } from '../../src/vmbus/fifo.ts';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { PacketType } from '../../src/vmbus/ring-layout.ts';
import { RestoreError, SAVED_VM_VERSION, decodeSavedVm, encodeSavedVm, sealSavedVm, type RestoreErrorCode, type SavedVmV1 } from '../../src/vmbus/saved-state.ts';
import { STATUS } from '../../src/vmbus/status.ts';
import { IFACE_INSTANCE, IFACE_TYPE } from './support/channel-pair.ts';

const text = (s: string) => new TextEncoder().encode(s);
const padded8 = (s: string) => {
  const b = new Uint8Array((s.length + 7) & ~7);
  b.set(text(s));
  return b;
};

function sampleVm(): SavedVmV1 {
  const layout = [
    { ch: 0, g2hPages: 1, h2gPages: 2 },
    { ch: 3, g2hPages: 2, h2gPages: 1 },
  ];
  const mem = new GuestMemory(layout);
  const g = mem.guestRings(3);
  g.out.tryWrite(PacketType.dataInBand, 1, 42, text('hello'));
  g.out.commit();
  return {
    v: 1,
    kind: 'vm',
    layout,
    memory: mem.image(),
    guest: { held: [1, 2, 3], name: 'guest', nested: { ok: true } },
    channels: [
      { ch: 0, kmclBuffers: [new Uint8Array([1, 2, 3]), new Uint8Array(0)] },
      { ch: 3, kmclBuffers: [] },
    ],
    bench: { nextHostTx: { '0': 7, '3': 1 } },
  };
}

function expectRestoreError(blob: unknown, code: RestoreErrorCode): void {
  let caught: unknown;
  try {
    decodeSavedVm(blob);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(RestoreError);
  expect((caught as RestoreError).code).toBe(code);
}

describe('encode and decode', () => {
  it('round-trips a saved VM', () => {
    const vm = sampleVm();
    expect(decodeSavedVm(encodeSavedVm(vm))).toEqual(vm);
  });

  it('decodes a blob that sits inside a larger buffer', () => {
    const vm = sampleVm();
    const blob = encodeSavedVm(vm);
    const big = new Uint8Array(blob.length + 100);
    big.set(blob, 37);
    expect(decodeSavedVm(big.subarray(37, 37 + blob.length))).toEqual(vm);
  });

  it('keeps the guest memory restorable: rings attach to the decoded bytes with their packets', () => {
    const vm = decodeSavedVm(encodeSavedVm(sampleVm()));
    const mem = new GuestMemory(vm.layout, vm.memory);
    const host = mem.hostRings(3);
    const v = host.in.peek()!;
    expect({ transId: v.transId, flags: v.flags }).toEqual({ transId: 42, flags: 1 });
    expect(host.in.payload(v)).toEqual(padded8('hello'));
  });
});

describe('refusing bad blobs', () => {
  const blob = encodeSavedVm(sampleVm());
  const edit = (f: (b: Uint8Array, dv: DataView) => void): Uint8Array => {
    const b = blob.slice();
    f(b, new DataView(b.buffer));
    return b;
  };

  it.each([
    ['shorter than the header', () => blob.subarray(0, 12), 'truncated'],
    ['cut short in the body', () => blob.subarray(0, blob.length - 1), 'truncated'],
    ['a flipped byte in the body', () => edit((b) => (b[b.length - 40] = b[b.length - 40]! ^ 0x10)), 'bad-checksum'],
    ['a wrong checksum', () => edit((_b, dv) => dv.setUint32(12, dv.getUint32(12, true) ^ 1, true)), 'bad-checksum'],
    ['wrong magic', () => edit((b) => (b[0] = 'X'.charCodeAt(0))), 'bad-magic'],
    ['a newer format version', () => edit((_b, dv) => dv.setUint32(8, SAVED_VM_VERSION + 1, true)), 'bad-version'],
    ['format version 0', () => edit((_b, dv) => dv.setUint32(8, 0, true)), 'bad-version'],
    ['trailing bytes after the body', () => Buffer.concat([blob, new Uint8Array([0])]), 'bad-record'],
    ['something that is not bytes', () => 'VMBSAVE', 'bad-record'],
    ['an empty buffer', () => new Uint8Array(0), 'truncated'],
  ] as Array<[string, () => unknown, RestoreErrorCode]>)('refuses %s with code %s', (_what, make, code) => {
    expectRestoreError(make(), code);
  });

  it.each([
    ['a record version other than 1', { v: 2 }],
    ['a record of another kind', { kind: 'channel' }],
    ['no memory', { memory: [1, 2, 3] }],
    ['no layout', { layout: undefined }],
    ['a malformed channel record', { channels: [{ ch: 0, kmclBuffers: ['AAAA'] }] }],
    ['no bench counters', { bench: undefined }],
  ] as Array<[string, Record<string, unknown>]>)('refuses a well-framed record with %s as bad-record', (_what, change) => {
    const rec = { ...sampleVm(), ...change } as unknown as SavedVmV1;
    expectRestoreError(encodeSavedVm(rec), 'bad-record');
  });

  // BUG (src/vmbus/saved-state.ts checkShape): the shape check looks at `layout` being an
  // array but not at its entries or at the memory size they imply. A well-framed record
  // whose layout does not match its memory decodes "successfully", and the caller's
  // `new GuestMemory(rec.layout, rec.memory)` (src/scenario/execute.ts restoreVm) then
  // throws a RangeError: a bench bug (exit 3) instead of a RestoreError (exit 2).
  it('refuses a record whose memory does not match its layout, as bad-record', () => {
    const vm = sampleVm();
    expectRestoreError(encodeSavedVm({ ...vm, memory: vm.memory.subarray(0, 4096) }), 'bad-record');
  });

  it('skips only the checksum for a blob its caller made and kept (ownBlob): the frame and the record are still checked', () => {
    const flipped = edit((_b, dv) => dv.setUint32(12, dv.getUint32(12, true) ^ 1, true));
    expect(decodeSavedVm(flipped, { ownBlob: true })).toEqual(sampleVm());
    expectRestoreError(flipped, 'bad-checksum');
    for (const [bad, code] of [
      [blob.subarray(0, blob.length - 1), 'truncated'],
      [edit((b) => (b[0] = 'X'.charCodeAt(0))), 'bad-magic'],
      [edit((_b, dv) => dv.setUint32(8, SAVED_VM_VERSION + 1, true)), 'bad-version'],
    ] as Array<[Uint8Array, RestoreErrorCode]>) {
      expect(() => decodeSavedVm(bad, { ownBlob: true })).toThrow(expect.objectContaining({ code }));
    }
  });

  it('an unsealed blob is refused as damaged until it is sealed, and its owner can restore it either way', () => {
    const unsealed = encodeSavedVm(sampleVm(), { seal: false });
    expect(decodeSavedVm(unsealed, { ownBlob: true })).toEqual(sampleVm());
    expectRestoreError(unsealed, 'bad-checksum');
    sealSavedVm(unsealed);
    expect(unsealed).toEqual(blob);
    expect(decodeSavedVm(unsealed)).toEqual(sampleVm());
  });

  it('refuses any single changed byte with a RestoreError, never a different record', () => {
    const small = encodeSavedVm({ ...sampleVm(), memory: new Uint8Array(64).fill(7), layout: [] });
    fc.assert(
      fc.property(fc.nat(small.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const b = small.slice();
        b[at] = b[at]! ^ xor;
        expect(() => decodeSavedVm(b)).toThrow(RestoreError);
      }),
      { numRuns: 300 },
    );
  });
});

describe('golden blob test/fixtures/saved/vm-v1.bin (format version 1)', () => {
  const golden = new Uint8Array(readFileSync(new URL('../fixtures/saved/vm-v1.bin', import.meta.url)));

  it('still decodes, with the fields version 1 wrote', () => {
    const vm = decodeSavedVm(golden);
    expect(vm.v).toBe(1);
    expect(vm.kind).toBe('vm');
    expect(vm.layout).toEqual([{ ch: 0, g2hPages: 1, h2gPages: 1 }]);
    expect(vm.guest).toEqual({ driver: 'vmbus-sample', held: [{ tx: 0x0fff }], version: 1 });
    expect(vm.bench).toEqual({ nextHostTx: { '0': 5 } });
    expect(vm.channels.map((c) => ({ ch: c.ch, buffers: c.kmclBuffers.length }))).toEqual([{ ch: 0, buffers: 2 }]);
    expect(vm.memory.length).toBe(4 * 4096);
  });

  it('still attaches its guest memory: both rings hold the packets that were in flight', () => {
    const vm = decodeSavedVm(golden);
    const mem = new GuestMemory(vm.layout, vm.memory);
    const host = mem.hostRings(0);
    const a = host.in.peek()!;
    expect([a.type, a.flags, a.transId]).toEqual([PacketType.dataInBand, 1, 0x1001]);
    expect(host.in.payload(a)).toEqual(padded8('read block 7'));
    host.in.advance(a);
    const b = host.in.peek()!;
    expect([b.type, b.flags, b.transId]).toEqual([PacketType.dataInBand, 0, 0x1002]);
    expect(host.in.payload(b)).toEqual(padded8('flush'));
    host.in.advance(b);
    expect(host.in.peek()).toBeNull();
    const guest = mem.guestRings(0);
    const c = guest.in.peek()!;
    expect([c.type, c.transId]).toEqual([PacketType.completion, 0x0fff]);
    expect(guest.in.payload(c)).toEqual(padded8('ok'));
  });

  it('still restores its KMCL save stream into a fresh server channel', () => {
    const vm = decodeSavedVm(golden);
    const ch = new Channel(true, 0, DEFAULT_CHOICES);
    ch.initSetProcessPacketCallbacks(() => {});
    ch.serverInitSetTargetInterfaceId(IFACE_TYPE, IFACE_INSTANCE);
    const saveBufs: string[] = [];
    ch.serverInitSetSaveRestorePacketCallbacks(
      () => STATUS.SUCCESS,
      (c, lib, save) => {
        saveBufs.push(new TextDecoder().decode(save));
        return packetRestore(c.packetAllocate(), lib);
      },
    );
    const statuses = vm.channels[0]!.kmclBuffers.map((b) => channelRestoreFromBuffer(ch, b));
    expect(statuses).toEqual([STATUS.MORE_PROCESSING_REQUIRED, STATUS.SUCCESS]);
    expect(saveBufs).toEqual(['vsp-state-4']);
    expect(ch.awaiting.ids()).toEqual([4]);
    expect(fifoItems(ch.queue)).toEqual([{ kind: 'completion', transId: 0x0ffe, payload: text('done') }]);
    expect(ch.nextTransId).toBe(5);
  });
});
