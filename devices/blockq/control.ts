// blockq's control language (PROTOCOL.md, "Control interfaces"): the lines its drivers'
// control interfaces take, made in one place for the emulator's C VSP adapter
// (c/host-vsp.ts) and for a real lab, once blockq has a control tool (it has none yet,
// so it is not the module's `control`). The shapes are DeviceControl's.

import type { ChannelOp, TrafficStep } from '../../src/device-api/device-module.ts';

/** A Request's mode as the guest's `request` command numbers it (PROTOCOL.md). */
const MODE = { inline: 0, deferred: 1, hold: 2 } as const;

/** A traffic step as a line of blockq's control language (PROTOCOL.md, "Control interfaces"). */
export function command(step: TrafficStep): { to: 'vsp' | 'guest'; line: string } {
  switch (step.op) {
    case 'guest-send':
      return { to: 'guest', line: `request ${step.count} ${step.size} ${MODE[step.mode]} ${step.mode === 'hold' ? step.hold : 0} ch=${step.channel}` };
    case 'host-send':
      return { to: 'vsp', line: `event ${step.count} ${step.size} ${step.hold} ch=${step.channel}` };
    case 'notify':
      return { to: step.dir === 'g2h' ? 'guest' : 'vsp', line: `note ${step.count} ${step.size} ch=${step.channel}` };
  }
}

/** The instance GUID blockq's VSP offers channel `ch` with: its last 8 hex digits are `ch`. */
export function channelInstance(ch: number): string {
  return `5b1e7a20-3c9d-4f61-8a0b-7e44${ch.toString(16).padStart(8, '0')}`;
}

/**
 * A channel operation as the VSP's command. blockq's VSP has no rescind, pause nor
 * FORCE_NEW_CHANNEL offer (PROTOCOL.md's command table): asking for one is the caller's
 * error, said here rather than as a line the VSP would refuse.
 */
export function channel(op: ChannelOp): string {
  if (op.op === 'open') {
    if (op.forceNewChannel) throw new Error('blockq: the VSP\'s open has no force-new-channel');
    return `open ${op.ch} ${op.instance}${op.loopback ? ' loopback' : ''} ring-pages=${op.ringPages}`;
  }
  if (op.op === 'rescind' || op.op === 'pause') throw new Error(`blockq: the VSP has no \`${op.op}\` command`);
  return `${op.op} ch=${op.ch}`;
}
