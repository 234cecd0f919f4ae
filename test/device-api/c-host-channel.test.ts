// Every C VSP's host face (src/device-api/c-host-channel.ts) speaks to its VSP in the lines
// the device's control makes (DeviceControl: the lines a real lab job sends): every line
// it gives the VSP's control interface, over any lifetime of a channel, is the control's
// for the operation the bench asked for. Run for both devices with a C VSP: the sample's
// (which re-offers: rescind, FORCE_NEW_CHANNEL) and blockq's (rescind, no FORCE_NEW_CHANNEL),
// and for blockq's VSP behind the plain face, as a VSP without a rescind is driven.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHostChannel, ReofferingCHostChannel } from '../../src/device-api/c-host-channel.ts';
import type { CVspDriver } from '../../src/device-api/c-vsp-driver.ts';
import { DeviceError, type ChannelOp, type HostVsp } from '../../src/device-api/device-module.ts';
import { RestoreError } from '../../src/vmbus/saved-state.ts';
import { Faults } from '../../src/vmbus/faults.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { CVsp } from '../../devices/sample/c/vsp.ts';
import { CHostVsp, SAMPLE_C_HOST, instanceGuid } from '../../devices/sample/c/host-vsp.ts';
import { sampleControl } from '../../devices/sample/control.ts';
import { BlockqCVsp } from '../../devices/blockq/c/vsp.ts';
import { BlockqCHostVsp, BLOCKQ_C_HOST, instanceGuid as blockqInstanceGuid } from '../../devices/blockq/c/host-vsp.ts';
import { channelInstance as blockqChannelInstance } from '../../devices/blockq/control.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** What the bench asks of one channel between two of its saves. */
type Send = { kind: 'transaction' | 'notify'; count: number; size: number; hold: number };
/** How a round ends: a save the VM runs on from, a save and restore, a checkpoint applied over the VM, a rescind. */
type End = 'resume' | 'detach' | 'discard' | 'rescind';
type Round = { sends: Send[]; end: End };

/** One device with a C VSP, as the property drives it. */
interface Case {
  name: string;
  driver(): CVspDriver;
  face(vsp: CVspDriver, ch: number, ringPages: number, forceNewChannel: boolean): CHostChannel<CVspDriver>;
  control: typeof SAMPLE_C_HOST.control;
  /** the VSP re-offers: rounds may end in a rescind */
  reoffers: boolean;
  /** channels may set FORCE_NEW_CHANNEL */
  forceNew: boolean;
}

const opts = { choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 };
const CASES: Case[] = [
  {
    name: 'the sample',
    driver: () => new CVsp(opts),
    face: (vsp, ch, ringPages, forceNewChannel) => new CHostVsp(vsp as CVsp, ch, ringPages, 0, new Faults([]), forceNewChannel) as CHostChannel<CVspDriver>,
    control: SAMPLE_C_HOST.control,
    reoffers: true,
    forceNew: true,
  },
  {
    name: 'blockq',
    driver: () => new BlockqCVsp(opts),
    face: (vsp, ch, ringPages) => new BlockqCHostVsp(vsp as BlockqCVsp, ch, ringPages, 0, new Faults([])) as CHostChannel<CVspDriver>,
    control: BLOCKQ_C_HOST.control,
    reoffers: true,
    forceNew: false,
  },
  {
    // The plain face, as a device whose VSP has no rescind gets it.
    name: 'blockq behind the plain face',
    driver: () => new BlockqCVsp(opts),
    face: (vsp, ch, ringPages) => new CHostChannel(vsp as BlockqCVsp, BLOCKQ_C_HOST, { ch, ringPages, quota: 0, faults: new Faults([]) }) as CHostChannel<CVspDriver>,
    control: BLOCKQ_C_HOST.control,
    reoffers: false,
    forceNew: false,
  },
];

// Sizes both protocols' messages can have (headers of 24 and 20 bytes).
const send: fc.Arbitrary<Send> = fc.record({
  kind: fc.constantFrom('transaction' as const, 'notify' as const),
  count: fc.integer({ min: 1, max: 2 }),
  size: fc.integer({ min: 32, max: 256 }),
  hold: fc.integer({ min: 0, max: 50 }),
});
const rounds = (reoffers: boolean): fc.Arbitrary<Round[]> =>
  fc.array(fc.record({ sends: fc.array(send, { maxLength: 2 }), end: fc.constantFrom<End>('resume', 'detach', 'discard', ...(reoffers ? (['rescind'] as const) : [])) }), { minLength: 1, maxLength: 3 });

describe('the devices\' host faces', () => {
  it('open with their control\'s instance GUID', () => {
    for (const ch of [0, 5, 0x2a, 0xffff]) {
      expect(instanceGuid(ch)).toBe(sampleControl.channelInstance(ch));
      expect(blockqInstanceGuid(ch)).toBe(blockqChannelInstance(ch));
    }
  });
});

describe.skipIf(!toolchain)('a C VSP\'s host face', () => {
  // Invariant: each line the face sends the C VSP is control.channel(op) for the channel
  // operation it carries out, or control.command(step).line for the traffic.
  it.each(CASES)('property ($name): every line the face sends is the device control\'s', (c) => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 4, max: 16 }), c.forceNew ? fc.boolean() : fc.constant(false), rounds(c.reoffers), (ch, ringPages, forceNewChannel, rs) => {
        const vsp = c.driver();
        const sent: string[] = [];
        const command = vsp.command.bind(vsp);
        vsp.command = (text: string): number => {
          sent.push(text);
          return command(text);
        };
        const expected: string[] = [];
        const op = (o: Exclude<ChannelOp['op'], 'open'>): void => void expected.push(c.control.channel({ op: o, ch }));
        const open = (): void => void expected.push(c.control.channel({ op: 'open', ch, instance: c.control.channelInstance(ch), ringPages, loopback: true, ...(forceNewChannel ? { forceNewChannel } : {}) }));
        const make = (): HostVsp => c.face(vsp, ch, ringPages, forceNewChannel);

        let host = make();
        host.enable();
        open();
        for (const r of rs) {
          for (const s of r.sends) {
            const firstTx = (vsp.counters().find((x) => x.ch === ch)?.next_tx ?? 0) + 1;
            host.send(s.kind, firstTx, s.count, s.size, s.hold);
            expected.push(c.control.command(s.kind === 'transaction'
              ? { op: 'host-send', channel: ch, count: s.count, size: s.size, hold: s.hold }
              : { op: 'notify', dir: 'h2g', channel: ch, count: s.count, size: s.size }).line);
          }
          if (r.end === 'rescind') {
            host.rescind!();
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
            host.rescind!();
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
      { numRuns: 30 },
    );
  });

  it('has a rescind, a guest close and a refusable restore only for a VSP that re-offers, which the executor asks for before it runs such a scenario', () => {
    const [sample, blockq, plain] = CASES.map((c) => c.face(c.driver(), 1, 4, false));
    expect(sample).toBeInstanceOf(ReofferingCHostChannel);
    expect(blockq).toBeInstanceOf(ReofferingCHostChannel);
    for (const m of ['rescind', 'guestClosed', 'retireClosed', 'refuseRestoreFromSecondPacket'] as const) {
      expect(typeof (sample as HostVsp)[m], m).toBe('function');
      expect(typeof (blockq as HostVsp)[m], m).toBe('function');
      expect((plain as HostVsp)[m], m).toBeUndefined();
    }
  });

  it.each(CASES)('a restore its VSP refuses ($name): a rescind and re-offer for a VSP that re-offers (DeviceError), else a bad saved VM (RestoreError)', (c) => {
    const vsp = c.driver();
    const host = c.face(vsp, 3, 4, false);
    host.enable();
    host.send('transaction', 1, 2, 64, 50);
    const saved = host.save();
    host.teardown({ discard: false });
    const again = c.face(vsp, 3, 4, false);
    // KMCL refuses the channel's first saved packet: its RestoreFromBuffer fails.
    vsp.kmcl.restoreRefusals.set(c.control.channelInstance(3), 1);
    let error: unknown;
    try {
      again.restore(saved);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(c.reoffers ? DeviceError : RestoreError);
    expect((error as Error).message).toMatch(/restore ch=3 failed: status 0x/);
  });

  it('keys every field of its object: one added later fails here until it is keyed or said to decide nothing', () => {
    const host = CASES[0]!.face(CASES[0]!.driver(), 5, 4, false);
    // keyed: ch, ringPages, quota, restored, forceNewChannel, refuseNextRestore, and the
    // channel (offered, or `detached`); not: vsp (keyed once per host by the device's
    // keyDriver), spec and faults (fixed for the run), countersAt and counters (a cache of
    // the driver's counters).
    expect(Object.keys(host).sort()).toEqual(['ch', 'counters', 'countersAt', 'detached', 'faults', 'forceNewChannel', 'quota', 'refuseNextRestore', 'restored', 'ringPages', 'spec', 'vsp']);
  });
});
