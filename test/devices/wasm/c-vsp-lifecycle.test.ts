// The C VSP's channel lifetime under any order of its control commands and of a guest's
// close: sends, save, detach, restore (some refused half-way), resume, rescind and the
// new instance's open. The invariants (lab/drivers/vsp/vsp-channel.c, vsp-save.c):
// - every VSP_CHANNEL can be taken down: `close` and the driver's unload then find no
//   channel, packet or pool block left, whatever ran before;
// - a HostTransaction ends at most once in the trace: a completion or a pkt.cancel, never
//   both, never twice;
// - no command breaks a rule the shim checks: a command the VSP cannot do now it refuses
//   with a status.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DriverViolation } from '../../../src/devices/wasm/violations.ts';
import { CH, INSTANCE, makeHarness, type Harness } from './support/vsp-harness.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

type Op =
  | { op: 'transact'; count: number }
  | { op: 'pump' }
  | { op: 'save' }
  | { op: 'detach' }
  | { op: 'restore'; refuseSecond: boolean }
  | { op: 'resume' }
  | { op: 'rescind' }
  | { op: 'open' }
  | { op: 'guest-close' }
  /** what the bench does at a VM save and restore: save, detach, restore, resume */
  | { op: 'vm-save-restore'; refuseSecond: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('transact' as const), count: fc.integer({ min: 1, max: 4 }) }),
  fc.constant({ op: 'pump' as const }),
  fc.constant({ op: 'save' as const }),
  fc.constant({ op: 'detach' as const }),
  fc.record({ op: fc.constant('restore' as const), refuseSecond: fc.boolean() }),
  fc.constant({ op: 'resume' as const }),
  fc.constant({ op: 'rescind' as const }),
  fc.constant({ op: 'open' as const }),
  fc.constant({ op: 'guest-close' as const }),
  fc.record({ op: fc.constant('vm-save-restore' as const), refuseSecond: fc.boolean() }),
);

function apply(h: Harness, o: Op): void {
  switch (o.op) {
    case 'transact':
      h.vsp.command(`transact ${o.count} 64 0 ch=${CH}`);
      return;
    case 'pump':
      h.pump();
      return;
    case 'restore':
      if (o.refuseSecond) h.vsp.kmcl.restoreRefusals.set(INSTANCE, 2);
      try {
        h.vsp.command(`restore ch=${CH}`);
      } finally {
        h.vsp.kmcl.restoreRefusals.delete(INSTANCE);
      }
      return;
    case 'open':
      h.vsp.command(`open ${CH} ${INSTANCE} loopback ring-pages=4`);
      return;
    case 'vm-save-restore':
      for (const step of ['save', 'detach'] as const) apply(h, { op: step });
      apply(h, { op: 'restore', refuseSecond: o.refuseSecond });
      apply(h, { op: 'resume' });
      return;
    case 'guest-close': {
      // The partition's close, then KMCL handing back what was outstanding (as the bench does).
      const server = h.vsp.offered(CH);
      if (!server || server.state.conn !== 'open') return;
      server.peerClosed();
      server.retireOutstanding();
      return;
    }
    default:
      h.vsp.command(`${o.op} ch=${CH}`);
  }
}

describe.skipIf(!toolchain)('the C VSP\'s channel lifetime', () => {
  it('any order of commands and guest closes: no rule broken, each transaction ended at most once, and close and unload find nothing left', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 14 }), (ops) => {
        const h = makeHarness();
        h.open();
        try {
          for (const o of ops) apply(h, o);
          h.vsp.command(`close ch=${CH}`);
          h.vsp.unload();
        } catch (e) {
          if (e instanceof DriverViolation) throw new Error(`${ops.map((o) => o.op).join(', ')}: ${e.message}`);
          throw e;
        }
        const ends = h.events().filter((e) => e.side === 'host' && (e.ev === 'pkt.completion' || e.ev === 'pkt.cancel')).map((e) => e.tx);
        expect(new Set(ends).size, ops.map((o) => o.op).join(', ')).toBe(ends.length);
      }),
      { numRuns: 200, seed: 14 },
    );
  });
});
