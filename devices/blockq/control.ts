// blockq's control language (PROTOCOL.md, "Control interfaces"): the lines its drivers'
// control interfaces take, the instance GUID of each channel and the counters they
// print: blockq's DeviceControl (`blockqControl`, the module's `control`), used by the
// emulator's C adapters (c/host-vsp.ts for the VSP; the C Linux guest,
// src/device-api/c-linux-guest.ts) and by a lab job.
//
// A real lab's host side reaches the VSP through blockq-ctl.exe (c/tool/blockq-ctl.c,
// on the bench's tool library as sample-ctl is):
//
//   blockq-ctl vsp command "TEXT"       one control line
//   blockq-ctl vsp counters             trace_seq=N, then "ch=N name=value ..." per channel
//   blockq-ctl etl2jsonl IN.etl OUT     the VSP's ETW capture (VmbusBench.BlockqVsp) as JSON Lines
//
// The guest side is the Linux guest driver (c/guest-linux): it takes `command`'s guest
// lines through its debugfs control file (`linuxGuest`). blockq has no Windows guest
// driver nor a loopback client, so the tool has no `guest` verbs, and a loopback job or
// a VM job with a Windows guest is planned not applicable (loopbackChannels and
// windowsGuestChannels 0).

import type { ChannelOp, DriverCounters, ToolControl, ToolVerb, TrafficStep } from '../../src/device-api/device-module.ts';
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
 * A channel operation as the VSP's command. blockq's VSP has no pause nor
 * FORCE_NEW_CHANNEL offer (PROTOCOL.md's command table): asking for one is the caller's
 * error, said here rather than as a line the VSP would refuse. Its `rescind` revokes the
 * offer, and `open` of a rescinded channel offers its new instance.
 */
export function channel(op: ChannelOp): string {
  if (op.op === 'open' && op.forceNewChannel) throw new Error('blockq: the VSP\'s open has no force-new-channel');
  if (op.op === 'pause') throw new Error(`blockq: the VSP has no \`${op.op}\` command`);
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

/**
 * blockq-ctl's argument vectors: the VSP's verbs and the ETW conversion. A guest verb
 * (a Windows guest's or a loopback client's) is the caller's error: blockq has neither
 * driver, and a lab plans no job that asks for one.
 */
export function toolArgs(v: ToolVerb): string[] {
  switch (v.verb) {
    case 'command':
    case 'counters':
      if (v.who !== 'vsp') break;
      return v.verb === 'command' ? ['vsp', 'command', v.line] : ['vsp', 'counters'];
    case 'convert-etl': return ['etl2jsonl', v.etl, v.jsonl];
    case 'trace': break;
  }
  throw new Error(`blockq: no Windows guest driver answers \`${v.verb}\` (its guest is the Linux module)`);
}

/** blockq's control: its lines, counters and instance GUIDs, blockq-ctl on a host, the Linux guest's control file. */
export const blockqControl: ToolControl = {
  command,
  channelInstance,
  channel,
  counters,
  // Where lab/SETUP.md "Drivers" has the lab put it, as sample-ctl.exe.
  tool: { program: 'C:\\bench\\bin\\blockq-ctl.exe', args: toolArgs },
  // c/guest-linux/bq_guest_ctl.c: one command per write.
  linuxGuest: { controlFile: '/sys/kernel/debug/vmbus_blockq_guest/control' },
  // No loopback client and no Windows guest driver: a loopback job, and a VM job with a
  // Windows guest, are planned not applicable, with these as the reason (src/lab/attach.ts,
  // src/lab/vm-steps.ts).
  loopbackChannels: 0,
  windowsGuestChannels: 0,
  // The guest answers each Event by the protocol's own rule (hold + d(tx)): nothing to set first.
  begin: [],
  // The Linux module registers its hv_driver as KBUILD_MODNAME, vmbus_blockq_guest
  // (c/guest-linux/bq_guest_main.c, Kbuild): a guest-close unbinds the device from it (its
  // remove closes the channel and ends what was in flight), a guest-open binds it again
  // (its probe opens it), and its trace is the module's, so it outlives the device. No
  // windowsPnp: blockq has no Windows guest driver.
  guestUnbind: { linuxDriver: 'vmbus_blockq_guest' },
};
