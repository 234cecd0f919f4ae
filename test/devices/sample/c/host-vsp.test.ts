// The C VSP's host adapter (devices/sample/c/host-vsp.ts) speaks to the VSP in the lines
// the sample's DeviceControl makes (devices/sample/control.ts), the lines a real lab job
// sends: every line the adapter gives the C VSP's control interface, over any lifetime
// of a channel, is sampleControl's for the operation the bench asked for.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CVsp } from '../../../../devices/sample/c/vsp.ts';
import { CHostVsp, instanceGuid } from '../../../../devices/sample/c/host-vsp.ts';
import { sampleControl } from '../../../../devices/sample/control.ts';
import type { ChannelOp } from '../../../../src/device-api/device-module.ts';
import { Faults } from '../../../../src/vmbus/faults.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** What the bench asks of one channel between two of its saves. */
type Send = { kind: 'transaction' | 'notify'; count: number; size: number; hold: number };
/** How a round ends: a save the VM runs on from, a save and restore, a checkpoint applied over the VM, a rescind. */
type End = 'resume' | 'detach' | 'discard' | 'rescind';
type Round = { sends: Send[]; end: End };

// Sizes a message of the sample's protocol can have (a 24-byte header, lab/drivers/common/sample-protocol.h).
const send: fc.Arbitrary<Send> = fc.record({
  kind: fc.constantFrom('transaction' as const, 'notify' as const),
  count: fc.integer({ min: 1, max: 2 }),
  size: fc.integer({ min: 32, max: 256 }),
  hold: fc.integer({ min: 0, max: 50 }),
});
const round: fc.Arbitrary<Round> = fc.record({
  sends: fc.array(send, { maxLength: 2 }),
  end: fc.constantFrom<End>('resume', 'detach', 'discard', 'rescind'),
});

describe.skipIf(!toolchain)('the C VSP host adapter', () => {
  it('opens with the control\'s instance GUID', () => {
    for (const ch of [0, 5, 0x2a, 0xffff]) expect(instanceGuid(ch)).toBe(sampleControl.channelInstance(ch));
  });

  // Invariant: each line CHostVsp sends the C VSP is sampleControl.channel(op) for the
  // channel operation it carries out, or sampleControl.command(step).line for the traffic.
  it('property: every line the adapter sends is the device control\'s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 4, max: 16 }), fc.boolean(), fc.array(round, { minLength: 1, maxLength: 3 }), (ch, ringPages, forceNewChannel, rounds) => {
        const vsp = new CVsp({ choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 });
        const sent: string[] = [];
        const command = vsp.command.bind(vsp);
        vsp.command = (text: string): number => {
          sent.push(text);
          return command(text);
        };
        const expected: string[] = [];
        const op = (o: Exclude<ChannelOp['op'], 'open'>): void => void expected.push(sampleControl.channel({ op: o, ch }));
        const open = (): void => void expected.push(sampleControl.channel({ op: 'open', ch, instance: sampleControl.channelInstance(ch), ringPages, loopback: true, forceNewChannel }));
        const make = (): CHostVsp => new CHostVsp(vsp, ch, ringPages, 0, new Faults([]), forceNewChannel);

        let host = make();
        host.enable();
        open();
        for (const r of rounds) {
          for (const s of r.sends) {
            const firstTx = (vsp.counters().find((c) => c.ch === ch)?.next_tx ?? 0) + 1;
            host.send(s.kind, firstTx, s.count, s.size, s.hold);
            expected.push(sampleControl.command(s.kind === 'transaction'
              ? { op: 'host-send', channel: ch, count: s.count, size: s.size, hold: s.hold }
              : { op: 'notify', dir: 'h2g', channel: ch, count: s.count, size: s.size }).line);
          }
          if (r.end === 'rescind') {
            host.rescind();
            op('rescind');
            host = make();
            host.enable();
            open();
            continue;
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
          if (forceNewChannel) {
            // FORCE_NEW_CHANNEL: the saved state is imported, not restored; the bench rescinds and offers anew.
            expect(() => host.restore(saved)).toThrow(/FORCE_NEW_CHANNEL/);
            host.rescind();
            op('rescind');
            host = make();
            host.enable();
            open();
          } else {
            host.restore(saved);
            op('restore');
            host.enable();
            op('resume');
          }
        }
        expect(sent).toEqual(expected);
      }),
      { numRuns: 40 },
    );
  });
});
