// blockq's control language (PROTOCOL.md, "Control interfaces"): the lines its drivers'
// control interfaces take, the instance GUID of each channel and the counters they
// print: blockq's DeviceControl (`blockqControl`, the module's `control`), used by the
// emulator's C adapters (c/host-vsp.ts for the VSP; the C Linux guest,
// src/device-api/c-linux-guest.ts) and by a lab job.
//
// It has no `tool`: a real lab's host side reaches the VSP through a Windows control
// tool (the sample's is sample-ctl.exe, lab/drivers/vsp/tool), and blockq has none, so a
// real lab refuses blockq (exit 2, saying so). The guest side is complete: the Linux
// guest driver (c/guest-linux) takes `command`'s guest lines through its debugfs
// control file (`linuxGuest`), as the emulator's `devices: c-linux` sends them, and a VM
// job whose host side is reached otherwise (the emulated one of
// test/run/real/support/c-vm.ts) runs with it.

import type { ChannelOp, DeviceControl, DriverCounters, TrafficStep } from '../../src/device-api/device-module.ts';
import { channelCommand, instanceGuid, parseCounters, trafficCommand } from '../../src/device-api/control-lines.ts';

/** A traffic step as a line of blockq's control language (PROTOCOL.md, "Control interfaces"): request, event, note. */
export function command(step: TrafficStep): { to: 'vsp' | 'guest'; line: string } {
  return trafficCommand(step, { request: 'request', transaction: 'event', notify: 'note' });
}

/** The instance GUID blockq's VSP offers channel `ch` with: its last 8 hex digits are `ch`. */
export function channelInstance(ch: number): string {
  return instanceGuid('5b1e7a20-3c9d-4f61-8a0b-7e44', ch);
}

/**
 * A channel operation as the VSP's command. blockq's VSP has no rescind, pause nor
 * FORCE_NEW_CHANNEL offer (PROTOCOL.md's command table): asking for one is the caller's
 * error, said here rather than as a line the VSP would refuse.
 */
export function channel(op: ChannelOp): string {
  if (op.op === 'open' && op.forceNewChannel) throw new Error('blockq: the VSP\'s open has no force-new-channel');
  if (op.op === 'rescind' || op.op === 'pause') throw new Error(`blockq: the VSP has no \`${op.op}\` command`);
  return channelCommand(op);
}

/**
 * `trace_seq=N` (the first line of both drivers' counters) and one `ch=N name=value ...`
 * line per channel. What wants a reply: the VSP's Events (`events_sent`, answered:
 * `replies`), the guest's Requests (`requests_sent`, answered: `completions`).
 */
export function counters(who: 'vsp' | 'guest', lines: readonly string[]): DriverCounters {
  return parseCounters(lines, who === 'vsp' ? { sent: 'events_sent', completed: 'replies' } : { sent: 'requests_sent', completed: 'completions' });
}

/** blockq's control: everything of a DeviceControl but the Windows tool, which it lacks (see the top of this file). */
export const blockqControl: DeviceControl = {
  command,
  channelInstance,
  channel,
  counters,
  // c/guest-linux/bq_guest_ctl.c: one command per write.
  linuxGuest: { controlFile: '/sys/kernel/debug/vmbus_blockq_guest/control' },
  // The guest answers each Event by the protocol's own rule (hold + d(tx)): nothing to set first.
  begin: [],
};
