// The shape of a device's control language that the sample and blockq share, for their
// DeviceControl (device-module.ts) to call: traffic commands as `VERB count size ... ch=N`,
// the VSP's channel commands, counters as `trace_seq=N` then `ch=N name=value ...` lines,
// and instance GUIDs that end in the channel number. What differs stays in each device's
// control.ts: its verbs, its counter names, its GUID, what its VSP cannot do, its tool.
// A device with another language writes its DeviceControl without these.

import type { ChannelOp, DriverCounters, TrafficStep } from './device-module.ts';

/** A guest Request's completion mode as the drivers' commands number it. */
export const MODE_NUMBER = { inline: 0, deferred: 1, hold: 2 } as const;

/** A device's words for its three traffic commands. */
export interface TrafficVerbs {
  /** guest-send: `VERB count size mode hold ch=N` (hold only in mode hold, else 0) */
  request: string;
  /** host-send: `VERB count size hold ch=N` */
  transaction: string;
  /** notify, either way: `VERB count size ch=N` */
  notify: string;
}

/** A traffic step as a line for the driver that sends it. */
export function trafficCommand(step: TrafficStep, verbs: TrafficVerbs): { to: 'vsp' | 'guest'; line: string } {
  switch (step.op) {
    case 'guest-send':
      return { to: 'guest', line: `${verbs.request} ${step.count} ${step.size} ${MODE_NUMBER[step.mode]} ${step.mode === 'hold' ? step.hold : 0} ch=${step.channel}` };
    case 'host-send':
      return { to: 'vsp', line: `${verbs.transaction} ${step.count} ${step.size} ${step.hold} ch=${step.channel}` };
    case 'notify':
      return { to: step.dir === 'g2h' ? 'guest' : 'vsp', line: `${verbs.notify} ${step.count} ${step.size} ch=${step.channel}` };
  }
}

/**
 * A channel operation as the VSP's command: `open N GUID [loopback] ring-pages=P
 * [force-new-channel]`, else `OP ch=N`. A VSP without some of them refuses those before
 * calling this.
 */
export function channelCommand(op: ChannelOp): string {
  if (op.op !== 'open') return `${op.op} ch=${op.ch}`;
  return `open ${op.ch} ${op.instance}${op.loopback ? ' loopback' : ''} ring-pages=${op.ringPages}${op.forceNewChannel ? ' force-new-channel' : ''}`;
}

/**
 * A driver's counters from its lines: the first `trace_seq=N` anywhere, and each line with
 * `ch=N` as that channel's, its sent and completed counts named by `names` (0 when
 * missing). Other text and fields are left alone, so a driver may print more.
 */
export function parseCounters(lines: readonly string[], names: { sent: string; completed: string }): DriverCounters {
  let traceSeq: number | undefined;
  const channels = new Map<number, { sent: number; completed: number }>();
  for (const l of lines) {
    const kv: Record<string, number> = {};
    for (const m of l.matchAll(/(\w+)=(\d+)/g)) kv[m[1]!] = Number(m[2]);
    if (kv.trace_seq !== undefined && traceSeq === undefined) traceSeq = kv.trace_seq;
    if (kv.ch !== undefined) channels.set(kv.ch, { sent: kv[names.sent] ?? 0, completed: kv[names.completed] ?? 0 });
  }
  return { traceSeq, channels };
}

/**
 * The instance GUID `prefix` followed by channel `ch` in hex, zero-padded to fill the
 * GUID: the drivers read a channel's number back from the id they bind.
 * Invariant: one-to-one on the channel numbers that fit, and a number that does not fit
 * is refused (a bench bug, not input).
 */
export function instanceGuid(prefix: string, ch: number): string {
  const width = 36 - prefix.length;
  const hex = ch.toString(16);
  if (!Number.isInteger(ch) || ch < 0 || hex.length > width) throw new Error(`channel ${ch} does not fit the ${width} hex digits ${prefix}... leaves`);
  return `${prefix}${hex.padStart(width, '0')}`;
}
