// The sample device's control on a real lab (src/device-api/device-module.ts DeviceControl):
// the command language of its drivers' control interfaces (lab/drivers/README.md,
// PROTOCOL.md "Control interfaces"), the instance GUID of each channel, the counters its
// drivers print, and sample-ctl.exe, the tool that reaches both Windows drivers (the VSP,
// and the Windows guest driver in a VM or as a loopback client in the host).
//
//   sample-ctl vsp|guest command "TEXT"   one control line
//   sample-ctl vsp|guest counters         trace_seq=N, then "ch=N name=value ..." per channel
//   sample-ctl guest trace OUT            the guest driver's trace buffer as JSON Lines
//   sample-ctl etl2jsonl IN.etl OUT       the VSP's ETW capture as JSON Lines
//
// The Linux guest driver takes the same lines through its debugfs control file.

import type { ChannelOp, DriverCounters, ToolControl, ToolVerb, TrafficStep } from '../../src/device-api/device-module.ts';
import { channelCommand, instanceGuid, parseCounters, trafficCommand } from '../../src/device-api/control-lines.ts';

/** A traffic step as a line of the drivers' control language (lab/drivers/README.md): send, transact, notify. */
export function command(step: TrafficStep): { to: 'vsp' | 'guest'; line: string } {
  return trafficCommand(step, { request: 'send', transaction: 'transact', notify: 'notify' });
}

/**
 * The channel's instance GUID ends in its number (PROTOCOL.md "Channel numbers"): the
 * drivers find a channel's number in the id they bind.
 */
export function channelInstance(ch: number): string {
  return instanceGuid('8d2f5c3a-71b4-4e0e-9a6d-', ch);
}

/** A channel operation as the VSP's command (vsp-driver.c VspRunCommand, vsp-save.c): every one the shared shape has. */
export function channel(op: ChannelOp): string {
  return channelCommand(op);
}

/**
 * `trace_seq=N` (the VSP's first line; the Windows guest driver's is a counter of its
 * channel lines) and one `ch=N name=value ...` line per channel. The VSP's transactions
 * are `transactions_sent`, the guest's requests `requests_sent`; both count the
 * completions they got as `completions`.
 */
export function counters(who: 'vsp' | 'guest', lines: readonly string[]): DriverCounters {
  return parseCounters(lines, { sent: who === 'vsp' ? 'transactions_sent' : 'requests_sent', completed: 'completions' });
}

function args(v: ToolVerb): string[] {
  switch (v.verb) {
    case 'command': return [v.who, 'command', v.line];
    case 'counters': return [v.who, 'counters'];
    case 'trace': return [v.who, 'trace', v.file];
    case 'convert-etl': return ['etl2jsonl', v.etl, v.jsonl];
  }
}

export const sampleControl: ToolControl = {
  command,
  channelInstance,
  channel,
  counters,
  // Where lab/SETUP.md "Drivers" has the lab put it.
  tool: { program: 'C:\\bench\\bin\\sample-ctl.exe', args },
  // sample_guest_ctl.c: one command per write.
  linuxGuest: { controlFile: '/sys/kernel/debug/vmbus_sample_guest/control' },
  // A loopback job's client is the Windows guest driver in the host. It serves several
  // channels now (one device per offer behind one control device, guest-control.c), but no
  // loopback job has been run with more than one yet.
  loopbackChannels: 1,
  // The Windows guest driver serves any number of channels in a VM: one PnP device per
  // offer, all behind its one control device (guest-control.c), so no windowsGuestChannels.
  // The guest completes each held host transaction after the time its arg0 asks for
  // (the scenario's host-send `hold`), as the twins do (PROTOCOL.md "hold").
  begin: [{ to: 'guest', line: 'hold auto' }],
  // The Linux module registers its hv_driver as KBUILD_MODNAME (sample_guest_main.c); its
  // remove closes the channel, its probe opens it, and its trace is the module's, so it
  // outlives the device. The Windows driver's trace is the driver's too (allocated in
  // DriverEntry, guest-trace.c): a disabled or rescinded device's end is traced and read
  // after, so windowsPnp.
  guestUnbind: { linuxDriver: 'vmbus_sample_guest', windowsPnp: true },
};
