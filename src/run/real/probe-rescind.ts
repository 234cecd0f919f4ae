// The probe's `rescind-order` experiment: how a real host tears down a client whose offer
// it rescinds. The bench's model of the Windows guest runs a host rescind as one removal
// (PnP removes the device, and the driver's own VmbChannelDisable suspends and closes the
// client); its test-only removal race (cGuestRemovalRace, devices/sample/c/guest-windows-vm.ts
// `raceRemoval`) assumes instead that vmbus and KMCL suspend and close the client on the
// rescind itself, before PnP's removal reaches the driver, so that a control command can
// reach the device in between. That order is inferred from the documentation; this asks
// the host, for the client as it runs there (in the host, on a loopback offer: a VM guest's
// VMBus may still order it otherwise).
//
// In loopback: a keeper channel holds the client driver's control device up (it goes with
// the driver's last device), a second channel carries traffic both ways, the VSP rescinds
// it, and the control tool sends on it at once. Then the client's device is awaited gone and
// both traces read. What tells the order:
//
//   - the client driver's `closed_outside_removal` counter (the sample guest's, driver-wide:
//     EvtVmbChannelClosed while the device was not being removed): up by one, KMCL closed
//     the client before PnP's removal; unchanged, the close came inside the removal;
//   - the command's refusal: STATUS_INVALID_DEVICE_STATE comes only from a device still
//     linked whose client is suspended (the driver unlinks a device before it disables its
//     client), so it shows the window itself; STATUS_NOT_FOUND, the device was gone;
//   - the client's trace against its counters: the driver writes its counters and unlinks a
//     removed device under one lock, and traces the close of a client it removes while
//     holding it, so a counters read that still lists the device with a trace_seq at or past
//     the client's Closed shows the close came first;
//   - the traces, for the record: the VSP's end of the channel closed and its cancels.
//
// sample-ctl prints a refusal's Win32 error on stderr (GetLastError after DeviceIoControl):
// the I/O manager maps STATUS_INVALID_DEVICE_STATE to ERROR_BAD_COMMAND (22) and
// STATUS_NOT_FOUND to ERROR_NOT_FOUND (1168) (Microsoft's NTSTATUS to Win32 error table;
// not yet seen on a host).

import type { DeviceControl } from '../../device-api/device-module.ts';
import { runNative } from '../../lab/deploy-vsp.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import { makeWorkDir, runTool, type HostTool, type LoopbackDrivers } from './loopback-lab.ts';

export interface RescindOrderFinding {
  status: 'pass' | 'fail' | 'unsupported';
  detail: string;
  meaning: string;
}

export interface RescindOrderOptions {
  tool: HostTool;
  clock: Clock;
  waitMs: number;
  /** the host folder the traces are written to (made here) */
  workDir: string;
  /** both drivers' traces and the VSP's capture over that folder (toolDrivers) */
  drivers: LoopbackDrivers;
  /** the channel kept open (the control device stays) and the one rescinded */
  keep: number;
  rescinded: number;
}

/** How the command sent right after the rescind ended. */
export type CommandFate =
  | { kind: 'taken' }
  | { kind: 'invalid-state' }
  | { kind: 'no-device' }
  | { kind: 'refused'; why: string };

/** sample-ctl's refusal text (its stderr, or any line) as the status the driver gave. */
export function commandFate(exitCode: number, lines: readonly string[]): CommandFate {
  if (exitCode === 0) return { kind: 'taken' };
  const text = lines.join(' ');
  if (/\(error 22\)|c0000184|STATUS_INVALID_DEVICE_STATE/i.test(text)) return { kind: 'invalid-state' };
  if (/\(error 1168\)|c0000225|STATUS_NOT_FOUND/i.test(text)) return { kind: 'no-device' };
  return { kind: 'refused', why: `exit ${exitCode}${text ? `: ${text.slice(0, 160)}` : ''}` };
}

/** The driver-wide `closed_outside_removal` from the client's counters lines, or undefined (a driver without it). */
export function closedOutsideRemoval(lines: readonly string[]): number | undefined {
  for (const l of lines) {
    const m = /(?:^|\s)closed_outside_removal=(\d+)/.exec(l);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** The events of a JSON Lines trace (lines that do not parse are skipped: a cut last line). */
function events(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const l of text.split(/\r?\n/)) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a writer cut off mid-line; the rest stands
    }
  }
  return out;
}

export async function rescindOrder(o: RescindOrderOptions, control: DeviceControl): Promise<RescindOrderFinding> {
  const { tool, keep, rescinded: rc } = o;
  const fail = (detail: string): RescindOrderFinding => ({ status: 'fail', detail, meaning: 'the rescind did not run as the experiment needs: see both drivers\' traces; the removal order stays unanswered' });
  const vsp = (line: string) => runTool(tool, { verb: 'command', who: 'vsp', line });
  const guestLines = () => runTool(tool, { verb: 'counters', who: 'guest' });
  const read = async () => control.counters('guest', await guestLines().catch(() => []));
  const listed = async () => (await read()).channels;

  await makeWorkDir(tool.hv, o.workDir);
  await o.drivers.startCapture();
  let hostTrace: string | undefined;
  try {
    for (const ch of [keep, rc]) await vsp(control.channel({ op: 'open', ch, instance: control.channelInstance(ch), ringPages: 4, loopback: true }));
    const bindUntil = o.clock.now() + o.waitMs;
    for (;;) {
      const now = await listed();
      if (now.has(keep) && now.has(rc)) break;
      if (o.clock.now() >= bindUntil) return fail(`the client did not open channels ${keep} and ${rc} within ${o.waitMs} ms`);
      await o.clock.sleep(250);
    }
    // Traffic in flight at the rescind: requests the VSP holds, transactions the client holds.
    for (const step of [
      { op: 'guest-send', channel: rc, count: 4, size: 64, mode: 'inline', hold: 60_000 },
      { op: 'host-send', channel: rc, count: 4, size: 64, hold: 60_000 },
    ] as const) {
      const c = control.command(step);
      await runTool(tool, { verb: 'command', who: c.to, line: c.line });
    }
    const before = closedOutsideRemoval(await guestLines());

    // The rescind, and at once a command on that channel, as the control tool's user may send it.
    await vsp(control.channel({ op: 'rescind', ch: rc }));
    const line = control.command({ op: 'guest-send', channel: rc, count: 1, size: 64, mode: 'inline', hold: 0 }).line;
    const sent = await runNative(tool.hv, tool.program, tool.control.tool.args({ verb: 'command', who: 'guest', line }));
    const fate = commandFate(sent.exitCode, [...sent.stderr, ...sent.output]);

    // PnP removes the device in its own time: the keeper's counters still answer.
    const goneUntil = o.clock.now() + o.waitMs;
    let listedSeq: number | undefined;
    for (;;) {
      const c = await read();
      if (!c.channels.has(rc)) break;
      listedSeq = c.traceSeq;
      if (o.clock.now() >= goneUntil) return fail(`the client's device for channel ${rc} was still there ${o.waitMs} ms after the rescind`);
      await o.clock.sleep(100);
    }
    const after = closedOutsideRemoval(await guestLines());
    const client = events(await o.drivers.client.readTrace()).filter((e) => e.ch === rc);
    hostTrace = await o.drivers.vsp.readTrace();
    return judge({ rc, line, fate, before, after, listedSeq, client, host: events(hostTrace).filter((e) => e.ch === rc) }, fail);
  } finally {
    // The capture stopped (its read stops it) and both channels given back, whatever happened.
    if (hostTrace === undefined) await o.drivers.vsp.readTrace().catch(() => undefined);
    for (const ch of [rc, keep]) await vsp(control.channel({ op: 'close', ch })).catch(() => undefined);
  }
}

export interface Seen {
  rc: number;
  line: string;
  fate: CommandFate;
  /** closed_outside_removal before the rescind and after the removal */
  before: number | undefined;
  after: number | undefined;
  /** the client's trace_seq at the last counters read after the rescind that still listed the device, or undefined: none did */
  listedSeq: number | undefined;
  /** the rescinded channel's events in the client's and the VSP's traces */
  client: Array<Record<string, unknown>>;
  host: Array<Record<string, unknown>>;
}

/**
 * What the traces, the counter and the command say of the order.
 * Invariant (a property in probe-rescind.test.ts): with both drivers' traces ending the
 * channel, the race is called possible exactly when the counter rose, the command was
 * refused with STATUS_INVALID_DEVICE_STATE, or the device was listed at or past the
 * client's Closed; not seen exactly when none of these and the counter was read both
 * times and stayed; unanswered otherwise.
 */
export function judge(x: Seen, fail: (detail: string) => RescindOrderFinding): RescindOrderFinding {
  const { rc, fate, before, after } = x;
  // The VSP traces no ch.rescind of its own (the bench inserts it in a job): its object's end (Closed, or Disabled) is what it writes.
  const hostEnd = x.host.filter((e) => e.ev === 'ch.state').at(-1);
  if (hostEnd?.state !== 'Closed' && hostEnd?.state !== 'Disabled') return fail(`the VSP's trace does not end channel ${rc} Closed or Disabled (its last state: ${String(hostEnd?.state ?? 'none')})`);
  const cancels = x.host.filter((e) => e.ev === 'pkt.cancel').length;
  const state = (s: string) => x.client.filter((e) => e.ev === 'ch.state' && e.state === s).at(-1)?.seq;
  const paused = state('Paused');
  const closed = state('Closed');
  if (closed === undefined) return fail(`the client's trace has no Closed of channel ${rc} after the rescind`);
  const fateText = {
    taken: 'taken: the rescind had not reached the client yet',
    'invalid-state': 'refused with STATUS_INVALID_DEVICE_STATE: it reached the device while its client was suspended',
    'no-device': 'refused with STATUS_NOT_FOUND: the device was gone already',
    refused: `refused (${fate.kind === 'refused' ? fate.why : ''})`,
  }[fate.kind];
  const delta = before !== undefined && after !== undefined ? after - before : undefined;
  const listedAfterClose = x.listedSeq !== undefined && x.listedSeq >= Number(closed);
  const listing = x.listedSeq === undefined ? 'no counters read after the rescind listed its device'
    : `its device was last listed at trace seq ${x.listedSeq}, ${listedAfterClose ? 'after' : 'before'} its Closed`;
  const order = delta === undefined
    ? 'the client driver prints no closed_outside_removal, so the close is not placed against the removal'
    : delta > 0 ? `KMCL closed the client before PnP removed its device (closed_outside_removal ${before} -> ${after})`
      : `the client was closed inside its device's removal (closed_outside_removal stayed ${before})`;
  const detail = `after "rescind" of channel ${rc} (the VSP traced its end ${String(hostEnd.state)}, seq ${String(hostEnd.seq)}, and ${cancels} host transactions cancelled), the client traced ${paused !== undefined ? `Paused (seq ${String(paused)}), ` : ''}Closed (seq ${String(closed)}): ${order}; ${listing}; "${x.line}" sent right after the rescind was ${fateText}`;
  if (fate.kind === 'invalid-state' || (delta !== undefined && delta > 0) || listedAfterClose) {
    return { status: 'pass', detail, meaning: 'the removal race modelled by cGuestRemovalRace is possible here: a control command can reach the device after KMCL suspended its client and before PnP removed it, so the guest driver must refuse sends once suspended (REVIEW D2)' };
  }
  if (delta === 0) {
    return { status: 'pass', detail, meaning: 'the removal race modelled by cGuestRemovalRace was not seen here: KMCL suspended and closed the client inside its device\'s removal, the bench\'s default order' };
  }
  return { status: 'unsupported', detail, meaning: 'unanswered: neither the driver\'s counters nor the command placed the close against the removal; cGuestRemovalRace stays an inferred order' };
}
