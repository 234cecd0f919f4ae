// blockq's C VSP host adapter (devices/blockq/c/host-vsp.ts) speaks to the VSP in the
// lines blockq's control makes (devices/blockq/control.ts): every line it gives the
// VSP's control interface, over any lifetime of a channel, is the control's for the
// operation the bench asked for.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockqCVsp } from '../../../devices/blockq/c/vsp.ts';
import { BlockqCHostVsp, instanceGuid } from '../../../devices/blockq/c/host-vsp.ts';
import { channel, channelInstance, command } from '../../../devices/blockq/control.ts';
import type { ChannelOp } from '../../../src/device-api/device-module.ts';
import { Faults } from '../../../src/vmbus/faults.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

type Send = { kind: 'transaction' | 'notify'; count: number; size: number; hold: number };
/** How a round ends: a save the VM runs on from, a save and restore, a checkpoint applied over the VM. */
type End = 'resume' | 'detach' | 'discard';

// Sizes a blockq message can have (a 20-byte header, devices/blockq/protocol.ts).
const send: fc.Arbitrary<Send> = fc.record({
  kind: fc.constantFrom('transaction' as const, 'notify' as const),
  count: fc.integer({ min: 1, max: 2 }),
  size: fc.integer({ min: 32, max: 256 }),
  hold: fc.integer({ min: 0, max: 50 }),
});
const round = fc.record({ sends: fc.array(send, { maxLength: 2 }), end: fc.constantFrom<End>('resume', 'detach', 'discard') });

describe('blockq\'s control', () => {
  it('refuses the channel operations its VSP has no command for, rather than make a line the VSP refuses', () => {
    expect(() => channel({ op: 'rescind', ch: 1 })).toThrow(/no `rescind`/);
    expect(() => channel({ op: 'open', ch: 1, instance: channelInstance(1), ringPages: 4, loopback: true, forceNewChannel: true })).toThrow(/force-new-channel/);
    expect(channel({ op: 'open', ch: 1, instance: channelInstance(1), ringPages: 4, loopback: true })).toBe(`open 1 ${channelInstance(1)} loopback ring-pages=4`);
  });
});

describe.skipIf(!toolchain)('blockq\'s C VSP host adapter', () => {
  it('opens with the control\'s instance GUID', () => {
    for (const ch of [0, 5, 0x2a, 0xffff]) expect(instanceGuid(ch)).toBe(channelInstance(ch));
  });

  // Invariant: each line BlockqCHostVsp sends the C VSP is channel(op) for the channel
  // operation it carries out, or command(step).line for the traffic.
  it('property: every line the adapter sends is the control\'s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 4, max: 16 }), fc.array(round, { minLength: 1, maxLength: 3 }), (ch, ringPages, rounds) => {
        const vsp = new BlockqCVsp({ choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 });
        const sent: string[] = [];
        const run = vsp.command.bind(vsp);
        vsp.command = (text: string): number => {
          sent.push(text);
          return run(text);
        };
        const expected: string[] = [];
        const op = (o: Exclude<ChannelOp['op'], 'open'>): void => void expected.push(channel({ op: o, ch }));
        const make = (): BlockqCHostVsp => new BlockqCHostVsp(vsp, ch, ringPages, 0, new Faults([]));

        let host = make();
        host.enable();
        expected.push(channel({ op: 'open', ch, instance: channelInstance(ch), ringPages, loopback: true }));
        for (const r of rounds) {
          for (const s of r.sends) {
            const firstTx = (vsp.counters().find((c) => c.ch === ch)?.next_tx ?? 0) + 1;
            host.send(s.kind, firstTx, s.count, s.size, s.hold);
            expected.push(command(s.kind === 'transaction'
              ? { op: 'host-send', channel: ch, count: s.count, size: s.size, hold: s.hold }
              : { op: 'notify', dir: 'h2g', channel: ch, count: s.count, size: s.size }).line);
          }
          const saved = host.save();
          op('save');
          if (r.end === 'resume') {
            host.resume();
            op('resume');
            continue;
          }
          if (r.end === 'discard') {
            // A checkpoint applied over the VM: it ran on from the save, then is discarded unsaved.
            host.resume();
            op('resume');
            host.teardown({ discard: true });
            op('discard');
          } else {
            host.teardown({ discard: false });
            op('detach');
          }
          host = make();
          host.restore(saved);
          op('restore');
          host.enable();
          op('resume');
        }
        expect(sent).toEqual(expected);
      }),
      { numRuns: 40 },
    );
  });
});
