// Fault modes (src/vmbus/faults.ts) at the channel layer: off by default, each acts once
// per run when switched on, and records that it fired, so the checker's tests can tell a
// run where a fault acted from one where it had nothing to act on.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { channelRestoreFromBuffer, channelSaveBegin, channelSaveContinue, channelSaveEnd, packetRestore } from '../../src/vmbus/channel-save.ts';
import { Channel } from '../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { Faults, FAULT_CLASS, FAULT_MODES, NO_FAULTS, type FaultMode } from '../../src/vmbus/faults.ts';
import { toTxId } from '../../src/vmbus/tx-id.ts';
import { fifoLength } from '../../src/vmbus/fifo.ts';
import { STATUS } from '../../src/vmbus/status.ts';
import { IFACE_INSTANCE, IFACE_TYPE, fillRing, holdIt, makePair, payload } from './support/channel-pair.ts';

describe('Faults', () => {
  it('is off unless a mode is switched on, and each mode acts once', () => {
    expect(NO_FAULTS.any).toBe(false);
    for (const m of FAULT_MODES) expect(NO_FAULTS.armed(m)).toBe(false);
    const f = new Faults(['restore-twice']);
    expect(f.any).toBe(true);
    expect(f.armed('restore-twice')).toBe(true);
    expect(f.armed('drop-saved-packet')).toBe(false);
    f.fire('restore-twice');
    expect(f.armed('restore-twice')).toBe(false);
    expect([...f.fired]).toEqual(['restore-twice']);
  });

  it('a fault whose change went unseen did not act, and stays used; a run handed on keeps both', () => {
    const f = new Faults(['wrong-status']);
    f.fire('wrong-status');
    f.unseen('wrong-status');
    expect([...f.fired]).toEqual([]);
    expect(f.armed('wrong-status')).toBe(false);
    expect(f.used).toEqual(['wrong-status']);
    const next = new Faults(['wrong-status']);
    next.carryOver([...f.fired], f.used);
    expect(next.armed('wrong-status')).toBe(false);
    expect([...next.fired]).toEqual([]);
    // A hand-off written before `used`: what fired is what was used.
    const old = new Faults(['wrong-status']);
    old.carryOver(['wrong-status']);
    expect([old.armed('wrong-status'), [...old.fired]]).toEqual([false, ['wrong-status']]);
  });

  it('wrong-status counts as acted exactly while its change lies unread in a ring or has been read, whatever happens to it, and a hand-off keeps where it is', () => {
    const moves = fc.array(fc.constantFrom('read', 'gone', 'back'), { maxLength: 12 });
    fc.assert(
      fc.property(fc.boolean(), moves, (written, ms) => {
        const f = new Faults(['wrong-status']);
        if (written) f.changeWritten(4096, toTxId(7));
        let everRead = false;
        for (const m of ms) {
          if (m === 'read') { everRead ||= f.changedCompletion?.at === 'ring'; f.changeRead(); }
          else if (m === 'gone') f.changeGone();
          else f.changeBack();
          const at = f.changedCompletion?.at;
          expect(f.fired.has('wrong-status')).toBe(at === 'ring' || at === 'read');
          // Read is for good: nothing takes back a change the guest saw.
          if (everRead) expect(at).toBe('read');
        }
        expect(f.armed('wrong-status')).toBe(!written);
        const next = new Faults(['wrong-status']);
        next.carryOver([...f.fired], f.used, f.changedCompletion);
        expect([next.armed('wrong-status'), [...next.fired], next.changedCompletion]).toEqual([f.armed('wrong-status'), [...f.fired], f.changedCompletion]);
      }),
      { numRuns: 300 },
    );
  });

  it('names at least one divergence class for every mode', () => {
    for (const m of FAULT_MODES) expect(FAULT_CLASS[m].length).toBeGreaterThan(0);
  });
});

/** A paused server with two transactions awaiting the guest and one packet queued. */
function savedWith(mode: FaultMode | null) {
  const pair = makePair({
    clientProcess: holdIt,
    serverInit: (ch) =>
      ch.serverInitSetSaveRestorePacketCallbacks((_c, p, buf, out) => {
        const priv = new Uint8Array(32).fill(p.id);
        if (buf === null) {
          out.bytesNeeded = priv.length;
          return STATUS.BUFFER_TOO_SMALL;
        }
        buf.set(priv);
        return STATUS.SUCCESS;
      }, () => STATUS.SUCCESS),
  });
  const faults = new Faults(mode ? [mode] : []);
  pair.server.ch.faults = faults;
  for (const t of [1, 2]) pair.server.ch.packetSend(pair.server.ch.packetAllocate(), payload(t), 1);
  pair.pump();
  fillRing(pair.server.ch);
  pair.server.ch.packetSend(pair.server.ch.packetAllocate(), payload(3), 1);
  pair.server.ch.pause();
  expect(channelSaveBegin(pair.server.ch)).toBe(STATUS.SUCCESS);
  const buf = new Uint8Array(1 << 16);
  const r = channelSaveContinue(pair.server.ch, buf);
  expect(r.status).toBe(STATUS.SUCCESS);
  channelSaveEnd(pair.server.ch);

  const restoredSaveBufs: Uint8Array[] = [];
  const fresh = new Channel(true, 0, DEFAULT_CHOICES);
  fresh.faults = faults;
  fresh.initSetProcessPacketCallbacks(() => {});
  fresh.serverInitSetTargetInterfaceId(IFACE_TYPE, IFACE_INSTANCE);
  fresh.serverInitSetSaveRestorePacketCallbacks(() => STATUS.SUCCESS, (c, lib, save) => {
    restoredSaveBufs.push(save.slice());
    return packetRestore(c.packetAllocate(), lib);
  });
  expect(channelRestoreFromBuffer(fresh, buf.subarray(0, r.bytesFilled))).toBe(STATUS.SUCCESS);
  return { faults, fresh, restoredSaveBufs };
}

describe('save/restore faults', () => {
  it('without faults, restores two awaiting transactions and one queued packet with their SaveBufs', () => {
    const { fresh, restoredSaveBufs, faults } = savedWith(null);
    expect(fresh.awaiting.size).toBe(2);
    expect(fifoLength(fresh.queue)).toBe(1);
    // The queued packet first (its id is after the ring's fillers), then the awaiting 1 and 2.
    expect(restoredSaveBufs).toHaveLength(3);
    expect(restoredSaveBufs.map((b) => b[0]).slice(1)).toEqual([1, 2]);
    expect([1, 2]).not.toContain(restoredSaveBufs[0]![0]);
    expect(faults.fired.size).toBe(0);
  });

  it.each<[FaultMode, (r: ReturnType<typeof savedWith>) => void]>([
    ['drop-saved-packet', ({ fresh }) => expect(fresh.awaiting.size).toBe(1)],
    ['forget-queued-at-save', ({ fresh }) => expect(fifoLength(fresh.queue)).toBe(0)],
    ['restore-twice', ({ restoredSaveBufs }) => expect(restoredSaveBufs).toHaveLength(4)],
    ['corrupt-savebuf', ({ restoredSaveBufs }) => expect(restoredSaveBufs.some((b) => b[24] !== b[0])).toBe(true)],
  ])('%s acts once and records that it fired', (mode, check) => {
    const r = savedWith(mode);
    check(r);
    expect([...r.faults.fired]).toEqual([mode]);
  });
});
