// The C VSP's state key (devices/sample/c/vsp-key.ts): its offsets are vsp.h's, every
// field it keys changes the key when it changes, what it leaves out does not, and the
// same state at other addresses and handles keys the same.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMPILE_FLAGS, DRIVERS_DIR } from '../../../../src/devices/wasm/build.ts';
import { LAYOUT, keyCVsp } from '../../../../devices/sample/c/vsp-key.ts';
import { CVsp } from '../../../../devices/sample/c/vsp.ts';
import { instanceGuid } from '../../../../devices/sample/c/host-vsp.ts';
import { StateKey } from '../../../../src/scenario/state-key.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const STRUCT = { device: 'VSP_DEVICE', channel: 'VSP_CHANNEL', tx: 'VSP_TX', held: 'VSP_HELD_REQUEST', deferred: 'VSP_DEFERRED' } as const;
/** The sizes of the structures the key reads, as keyed. */
const SIZES = { VSP_CHANNEL: 248, VSP_TX: 56, VSP_HELD_REQUEST: 64, VSP_DEFERRED: 16 } as const;
/** VSP_CHANNEL fields the key leaves out (vsp-key.ts says why), checked against vsp.h as LAYOUT is. */
const LEFT_OUT = { 'Counters.RequestsReceived': 120, 'Counters.Saved': 216, SaveBlobSize: 112 } as const;

describe.skipIf(!toolchain)('the C VSP state key', () => {
  it('reads vsp.h\'s structures at the offsets clang gives them in wasm32', () => {
    const asserts = Object.entries(LAYOUT).flatMap(([s, fields]) =>
      Object.entries(fields).map(([f, at]) => `_Static_assert(__builtin_offsetof(${STRUCT[s as keyof typeof STRUCT]}, ${f}) == ${at}, "${s}.${f} is not at ${at}");`),
    );
    for (const [f, at] of Object.entries(LEFT_OUT)) asserts.push(`_Static_assert(__builtin_offsetof(VSP_CHANNEL, ${f}) == ${at}, "channel.${f} is not at ${at}");`);
    asserts.push('_Static_assert(SP_COMPLETION_SIZE == 32, "SP_COMPLETION_SIZE");');
    // A field added to a structure the key reads grows it (unless it fits in padding): the key must say whether it decides anything.
    for (const [struct, size] of Object.entries(SIZES)) asserts.push(`_Static_assert(sizeof(${struct}) == ${size}, "sizeof(${struct}) is not ${size}: a field was added or removed");`);
    const dir = mkdtempSync(join(tmpdir(), 'vsp-layout-'));
    try {
      const file = join(dir, 'layout.c');
      writeFileSync(file, `#include "vsp.h"\n${asserts.join('\n')}\n`);
      const r = spawnSync('clang', [...COMPILE_FLAGS, '-isystem', join(DRIVERS_DIR, 'wdk-standin', 'km'), '-iquote', join(DRIVERS_DIR, 'vsp'), '-fsyntax-only', file], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A C VSP with one loopback channel and `inFlight` host transactions sent (no client drains them). */
  function vspWith(inFlight: number): CVsp {
    const v = new CVsp({ choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 });
    v.run(`open 5 ${instanceGuid(5)} loopback ring-pages=4`);
    if (inFlight > 0) v.run(`transact ${inFlight} 64 0 ch=5`);
    return v;
  }
  const keyOf = (v: CVsp): StateKey => {
    const k = new StateKey();
    keyCVsp(k, v);
    return k;
  };
  /** The address of the VSP_CHANNEL and of its first VSP_TX in flight. */
  const where = (v: CVsp): { vc: number; tx: number } => {
    const mem = v.rt.mem;
    const vc = mem.u32(v.wdf.deviceContext() + LAYOUT.device.Channels) - LAYOUT.channel.Link;
    return { vc, tx: mem.u32(vc + LAYOUT.channel.InFlight) - LAYOUT.tx.Link };
  };

  // Invariant: a change to any field the key reads changes the key; setting it back gives the key back.
  it('property: a changed keyed field changes the key', () => {
    const v = vspWith(3);
    const { vc, tx } = where(v);
    const mem = v.rt.mem;
    const original = keyOf(v);
    const c = LAYOUT.channel;
    const t = LAYOUT.tx;
    // (field address, bytes): the VSP_CHANNEL's scalar fields and a transaction's record.
    const fields: Array<[number, number]> = [
      [vc + c.Ch, 4], [vc + c.Instance, 16], [vc + c.Loopback, 1], [vc + c.ForceNewChannel, 1], [vc + c.RingPages, 4],
      [vc + c.Abandoning, 1], [vc + c.Discarding, 1], [vc + c.Unoffered, 1], [vc + c.Suspended, 1],
      [vc + c.Paused, 1], [vc + c.Disabling, 1], [vc + c.Retiring, 1], [vc + c.Rescinded, 1], [vc + c.Unopened, 1], [vc + c.NextTx, 8],
      [vc + c['Counters.HeldNow'], 8], [vc + c['Counters.InFlight'], 8], [vc + c['Counters.InFlightBytes'], 8],
      [tx + t['Saved.type'], 2], [tx + t['Saved.tx'], 8], [tx + t['Saved.length'], 4], [tx + t['Saved.hold_ms'], 4], [tx + t['Saved.digest'], 8], [tx + t.RingBytes, 4],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.nat(), fc.integer({ min: 1, max: 255 }), ([at, size], byte, flip) => {
        const i = at + (byte % size);
        const was = mem.bytes[i]!;
        mem.bytes[i] = was ^ flip;
        const changed = keyOf(v);
        mem.bytes[i] = was;
        expect(changed.equals(original)).toBe(false);
        expect(keyOf(v).equals(original)).toBe(true);
      }),
    );
  });

  it('leaves out what decides nothing: statistics counters, the saved blob, the stack\'s padding in a record', () => {
    const v = vspWith(2);
    const { vc, tx } = where(v);
    const mem = v.rt.mem;
    const original = keyOf(v);
    const b = mem.bytes;
    b[vc + LEFT_OUT['Counters.RequestsReceived']] = b[vc + LEFT_OUT['Counters.RequestsReceived']]! ^ 1;
    b[vc + LEFT_OUT['Counters.Saved']] = b[vc + LEFT_OUT['Counters.Saved']]! ^ 1;
    mem.setU32(vc + LEFT_OUT.SaveBlobSize, 1234);
    b[tx + LAYOUT.tx['Saved.type'] + 2] = b[tx + LAYOUT.tx['Saved.type'] + 2]! ^ 0xff; // padding after Saved.type
    b[tx + LAYOUT.tx.Message] = b[tx + LAYOUT.tx.Message]! ^ 0xff; // the message, sent already
    expect(keyOf(v).equals(original)).toBe(true);
  });

  it('keys the same state at other addresses and handles the same: a second driver that did the same, after other work', () => {
    const a = vspWith(4);
    const b = new CVsp({ choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 });
    // Other work first, all of it undone: b's pool and handles are further on than a's.
    b.run(`open 9 ${instanceGuid(9)} loopback ring-pages=4`);
    for (let i = 0; i < 3; i++) b.counters();
    b.run('close ch=9');
    b.run(`open 5 ${instanceGuid(5)} loopback ring-pages=4`);
    b.run('transact 4 64 0 ch=5');
    expect(where(b).vc).not.toBe(where(a).vc);
    expect(keyOf(b).firstDifference(keyOf(a))).toBe(null);
    // and the transactions in flight are in the key: one more is another state
    b.run('transact 1 64 0 ch=5');
    expect(keyOf(b).equals(keyOf(a))).toBe(false);
  });
});
